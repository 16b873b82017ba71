"""Reports: summaries of the Parquet dataset. They never read the runner's memory."""

from harness.report.summary import load_run, render, summarize

__all__ = ["load_run", "render", "summarize"]
