"""report.json: its typed record (``record``), its renderings (report.md, report.html) and ``compare`` across runs.

Renders only, measuring happened in the pipeline: may import core/ only, and never TensorFlow.
"""

from compressctl.report.html import render_html
from compressctl.report.markdown import render_markdown

__all__ = ["render_html", "render_markdown"]
