"""Command line: thin click wrappers around one core entry point per command.

Heavy imports (litellm, pandas) happen inside commands; ``harness --help``,
``validate`` and ``summarize`` never import litellm. Known errors become a
one-line message and an exit code (2: bad config or input, 1: failure);
``HARNESS_DEBUG=1`` lets them propagate with a traceback.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from harness import __version__

F = TypeVar("F", bound=Callable[..., Any])


def _clean_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from harness.datasets import DatasetError
        from harness.errors import ConfigError, HarnessError, StoreError

        try:
            return func(*args, **kwargs)
        except (ConfigError, StoreError, DatasetError) as exc:
            if os.environ.get("HARNESS_DEBUG"):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except HarnessError as exc:
            if os.environ.get("HARNESS_DEBUG"):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harness")
def main() -> None:
    """Benchmark LLM providers on quality, latency and cost from the same responses."""


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Results root.")
@click.option("--run-id", help="Name of this run (default: UTC timestamp and run name).")
@click.option("--no-progress", is_flag=True, help="Do not show the progress bar.")
@_clean_errors
def run(config: Path, out: Path | None, run_id: str | None, no_progress: bool) -> None:
    """Send every suite of CONFIG to every provider, store the rows, print the comparison."""
    from harness.config import load_config
    from harness.execute import execute
    from harness.report import load_run, render, run_slos, summarize

    spec = load_config(config)
    result = execute(spec, out=out, run_id=run_id, show_progress=not no_progress)
    for notice in result.skipped.values():
        click.echo(f"note: {notice}", err=True)
    root = result.run_dir.parent
    _, rows = load_run(root, result.run_id)
    table = summarize(rows, run_slos(root, result.run_id))
    click.echo(render(table, "table", title=f"run {result.run_id}"))
    _echo_pairs(rows, "table")
    click.echo(f"\n{len(rows)} rows in {result.run_dir}")
    if result.outcome is not None and result.outcome.untrustworthy:
        from harness.execute import clock_warning

        click.echo(f"warning: {clock_warning(result.outcome)}", err=True)
    if result.status != "completed":
        click.echo(f"run {result.status}", err=True)
        sys.exit(130)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@_clean_errors
def validate(config: Path) -> None:
    """Check CONFIG and its suite files without sending anything."""
    from harness.config import load_config

    spec = load_config(config)
    from harness.execute import build_plan

    n = sum(len(phase.requests) for phase in build_plan(spec))
    click.echo(
        f"{config}: ok — {len(spec.providers)} providers, {len(spec.suites)} suites,"
        f" {n} requests planned"
    )


@main.command()
@click.argument("results_root", type=click.Path(path_type=Path))
@click.option("--run", "run_id", help="Run id (default: the latest run).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "markdown", "json"]),
    default="table",
    show_default=True,
)
@_clean_errors
def summarize(results_root: Path, run_id: str | None, fmt: str) -> None:
    """Print the comparison table of a run from the Parquet data alone."""
    from harness.report import load_run, render, run_slos
    from harness.report import summarize as summarize_rows

    chosen, rows = load_run(results_root, run_id)
    table = summarize_rows(rows, run_slos(results_root, chosen))
    title = f"run {chosen}" if fmt in ("table", "markdown") else None
    click.echo(render(table, fmt, title=title))
    if fmt in ("table", "markdown"):
        _echo_pairs(rows, fmt)


def _echo_pairs(rows: Any, fmt: str) -> None:
    """The paired quality comparison, when the run has scored answers."""
    from harness.report.summary import paired_quality, render_pairs

    pairs = paired_quality(rows)
    if len(pairs):
        click.echo("\n" + render_pairs(pairs, fmt))


@main.command()
@click.option("--port", type=int, default=8911, show_default=True, help="0 picks a free port.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--model", default="sim", show_default=True, help="Model name of this profile.")
@click.option("--ttft-ms", type=float, default=50.0, show_default=True)
@click.option("--itl-ms", type=float, default=5.0, show_default=True)
@click.option("--output-tokens", type=int, default=64, show_default=True)
@click.option("--jitter", type=float, default=0.0, show_default=True)
@click.option("--error-rate", type=float, default=0.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def sim(
    port: int,
    host: str,
    model: str,
    ttft_ms: float,
    itl_ms: float,
    output_tokens: int,
    jitter: float,
    error_rate: float,
    seed: int,
) -> None:
    """Serve the simulated OpenAI-compatible provider in the foreground (Ctrl-C stops)."""
    import asyncio
    import contextlib

    from pydantic import ValidationError

    from harness.sim.profile import SimProfile
    from harness.sim.server import serve

    try:
        profile = SimProfile(
            ttft_ms=ttft_ms,
            itl_ms=itl_ms,
            output_tokens=output_tokens,
            jitter=jitter,
            error_rate=error_rate,
            seed=seed,
        )
    except ValidationError as exc:
        raise click.BadParameter(str(exc)) from None
    click.echo(f"simulated provider: model {model!r}, {profile}", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(profile, {model: profile}, host=host, port=port))


if __name__ == "__main__":
    main()
