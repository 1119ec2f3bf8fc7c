"""Rendering report.json into other formats. Renders only: measuring happened in the pipeline."""

from compressctl.report.markdown import render_markdown

__all__ = ["render_markdown"]
