"""Reports: summaries of the Parquet dataset. They never read the runner's memory."""

from harness.report.summary import compact, load_run, load_summary, render, run_slos, summarize

__all__ = ["compact", "load_run", "load_summary", "render", "run_slos", "summarize"]
