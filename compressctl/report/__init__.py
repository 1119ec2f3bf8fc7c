"""Rendering report.json into other formats. Renders only: measuring happened in the pipeline."""

from compressctl.report.html import render_html
from compressctl.report.markdown import render_markdown

__all__ = ["render_html", "render_markdown"]
