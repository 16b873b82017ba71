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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from harness import __version__

F = TypeVar("F", bound=Callable[..., Any])


def _clean_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from harness.errors import ConfigError, HarnessError, StoreError

        try:
            return func(*args, **kwargs)
        except HarnessError as exc:
            # A DatasetError can only come from harness.suites.datasets once it is
            # imported: importing it here for every command (the suite kinds, pydantic:
            # a quarter of a second) would tax the reports, which never load a suite.
            datasets = sys.modules.get("harness.suites.datasets")
            bad_input = (ConfigError, StoreError) + (
                (datasets.DatasetError,) if datasets is not None else ()
            )
            if isinstance(exc, bad_input):
                if os.environ.get("HARNESS_DEBUG"):
                    raise
                click.echo(f"error: {exc}", err=True)
                sys.exit(2)
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
@click.option("--dry-run", is_flag=True, help="Print the plan and a cost estimate; send nothing.")
@click.option(
    "--resume",
    "resume",
    metavar="RUN_ID",
    help="Continue RUN_ID: send only the requests that have no finished row.",
)
@click.option(
    "--executor",
    type=click.Choice(["inline", "processes", "ray"]),
    default=None,
    help="What sends the requests (overrides run.executor; see docs/scale.md).",
)
@click.option(
    "--ray-address",
    metavar="ADDRESS",
    default=None,
    help="Ray cluster: auto, or ray://host:10001 (implies --executor ray).",
)
@_clean_errors
def run(
    config: Path,
    out: Path | None,
    run_id: str | None,
    no_progress: bool,
    dry_run: bool,
    resume: str | None,
    executor: str | None,
    ray_address: str | None,
) -> None:
    """Send every suite of CONFIG to every provider, store the rows, print the comparison."""
    from harness.config.spec import load_config, with_executor
    from harness.report import load_summary
    from harness.run.session import execute

    spec = with_executor(load_config(config), executor, ray_address)
    if dry_run:
        _print_dry_run(spec)
        return
    if resume and run_id:
        raise click.UsageError("--resume names the run; do not combine it with --run-id")
    from harness.run.session import deprecation_warnings

    for warning in deprecation_warnings(spec):
        click.echo(f"warning: {warning}", err=True)
    told: set[str] = set()

    def notify(provider: str, message: str) -> None:
        # At once, to stderr: a dead server is news before the tables.
        told.add(provider)
        level = "note: optional" if spec.provider(provider).optional else "error:"
        click.echo(f"{level} provider {provider}: {message}", err=True)

    result = execute(
        spec,
        out=out,
        run_id=run_id,
        resume=resume,
        show_progress=not no_progress,
        notify=notify,
    )
    for notice in result.skipped.values():
        click.echo(f"note: {notice}", err=True)

    root = result.run_dir.parent
    _, rows, table = load_summary(root, result.run_id)  # and keeps it (summary_cache)
    from harness.report.trends import keep_latest_changes
    from harness.store.files import read_manifest

    # What the run's first report would compute again: its trend's diff with the last run.
    keep_latest_changes(root, result.run_id, read_manifest(result.run_dir), rows)
    _echo_summary(table, rows, "table", title=f"run {result.run_id}")
    _echo_pairs(rows, "table")
    click.echo(f"\n{len(rows)} rows in {result.run_dir}")
    _echo_load_shapes(root, result.run_id, rows)
    if result.stopped_reason:
        click.echo(f"stopped early: {result.stopped_reason}; every finished row is kept", err=True)
    if result.outcome is not None and result.outcome.untrustworthy:
        from harness.run.session import clock_warning

        click.echo(f"warning: {clock_warning(result.outcome)}", err=True)
    if result.status != "completed":
        click.echo(f"run {result.status}", err=True)
        sys.exit(130)
    if _report_failures(spec, result, rows, told):
        sys.exit(1)


def _report_failures(spec: Any, result: Any, rows: Any, told: set[str]) -> bool:
    """Print each failed provider (in full unless already told); True if one is not optional."""
    from harness.run.failures import provider_failures

    outcome = result.outcome
    failures = provider_failures(
        spec, rows, result.unavailable, outcome.warmup_errors if outcome is not None else {}
    )
    for failure in failures:
        reason = failure.reason.splitlines()[0] if failure.provider in told else failure.reason
        level = "note: optional" if failure.optional else "error:"
        click.echo(f"{level} provider {failure.provider} failed: {reason}", err=True)
    return any(not failure.optional for failure in failures)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@_clean_errors
def validate(config: Path) -> None:
    """Check CONFIG and its suite files without sending anything."""
    from harness.config.spec import load_config

    spec = load_config(config)
    from harness.run.plan import plan_count

    # The run's own plan: optional providers that would be skipped are not counted.
    count = plan_count(spec)
    for notice in count.skipped.values():
        click.echo(f"note: {notice}", err=True)
    click.echo(
        f"{config}: ok — {count.providers} providers, {len(spec.suites)} suites, {count.describe()}"
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
@click.option("--wide", is_flag=True, help="Every column, not only those that fit.")
@click.option("--columns", default=None, help="Exactly these columns, e.g. provider,ttft_p50_ms.")
@_clean_errors
def summarize(
    results_root: Path, run_id: str | None, fmt: str, wide: bool, columns: str | None
) -> None:
    """Print the comparison of a run from the Parquet data alone: one table per suite with
    the columns its kind needs, fitted to the terminal (``--wide``/``--columns`` for more)."""
    from harness.report import load_summary, render
    from harness.report.summary import SUMMARIZE_COLUMNS

    # Only the columns the summary and its notes read: a million rows of the others
    # would cost seconds and a gigabyte.
    chosen, rows, table = load_summary(results_root, run_id, columns=SUMMARIZE_COLUMNS)
    if fmt in ("csv", "json"):
        click.echo(render(table, fmt))
        return
    _echo_summary(table, rows, fmt, title=f"run {chosen}", wide=wide, columns=columns)
    _echo_pairs(rows, fmt)
    _echo_load_shapes(results_root, chosen, rows)


def _column_list(columns: str | None) -> list[str] | None:
    return [c.strip() for c in columns.split(",") if c.strip()] if columns else None


def _echo_summary(
    table: Any,
    rows: Any,
    fmt: str,
    *,
    title: str,
    wide: bool = False,
    columns: str | None = None,
) -> None:
    """The summary per suite, each with its kind's columns, fitted to the terminal."""
    from harness.report import views

    try:
        text, dropped = views.summary_text(
            table, views.suite_kinds(rows), fmt=fmt, wide=wide, columns=_column_list(columns)
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    click.echo((f"### {title}\n\n" if fmt == "markdown" else f"{title}\n\n") + text)
    hint = views.more_columns_hint(dropped)
    if hint and fmt == "table":
        click.echo(hint, err=True)


def _echo_load_shapes(root: Path, run_id: str, rows: Any) -> None:
    """Capacity at SLO and trace-replay fidelity, one line each (nothing without them)."""
    from harness.report.capacity import load_shape_report

    _, notes = load_shape_report(root, run_id, rows)
    if notes:
        click.echo("")
    for note in notes:
        click.echo(note)


def _print_dry_run(spec: Any) -> None:
    import pandas as pd

    from harness.report.text import cell_text, render_text
    from harness.run.endpoints import unset_key_envs
    from harness.run.plan import plan_estimate
    from harness.run.session import deprecation_warnings

    lines, skipped = plan_estimate(spec)
    for notice in skipped.values():
        click.echo(f"note: {notice}", err=True)
    # What a run would warn about or fail on, told now; a dry run itself needs no key.
    for warning in deprecation_warnings(spec):
        click.echo(f"warning: {warning}", err=True)
    unset = unset_key_envs(spec)
    if unset:
        click.echo(
            "note: environment variables not set (a run would stop on them; the dry run"
            " does not need them):\n  " + "\n  ".join(unset),
            err=True,
        )

    def usd(value: float | None) -> str:
        return cell_text(value, "usd", "no price")

    table = pd.DataFrame(
        [
            {
                "suite": line.suite,
                "provider": line.provider,
                "requests": f"{line.requests:,} per level (capacity search: variable)"
                if line.variable
                else f"{line.requests:,}+ (time-bounded)"
                if line.time_bounded
                else f"{line.requests:,}",
                "input tokens (est.)": line.input_tokens,
                "max output tokens": line.max_output_tokens,
                "cost low": usd(line.cost_low),
                "cost high": usd(line.cost_high),
                "price": line.price_source,
            }
            for line in lines
        ]
    )
    align = ["left", "left", "right", "right", "right", "right", "right", "left"]
    click.echo(render_text(table, "table", align=align))
    low = usd(sum(line.cost_low or 0 for line in lines))
    high = usd(sum(line.cost_high or 0 for line in lines))
    total = sum(line.requests for line in lines)
    if any(line.variable for line in lines):
        click.echo(
            "\nnote: a capacity search sends a variable number of requests (as many levels as"
            " it needs); its line counts and prices one level",
        )
    if all(line.cost_high is not None for line in lines):
        click.echo(
            f"\n{total} requests; estimated cost {low} to {high} (input counted with"
            " o200k_base; output from 1 token to max_tokens). Nothing was sent."
        )
    else:
        unpriced = sorted({line.provider for line in lines if line.cost_high is None})
        click.echo(
            f"\n{total} requests; priced part {low} to {high}; no estimate for:"
            f" {', '.join(unpriced)} (no price, or priced per second). Nothing was sent."
        )
    if spec.run.budget_usd is not None:
        click.echo(f"budget cap: {usd(spec.run.budget_usd)}")


def _echo_pairs(rows: Any, fmt: str) -> None:
    """The paired quality comparison, when the run has scored answers."""
    from harness.report.quality import primary_scores, structured_latency
    from harness.report.summary import (
        paired_quality,
        unpaired_providers,
    )

    pairs = paired_quality(rows)
    if len(pairs):
        from harness.report.views import pairs_text

        click.echo("\n" + pairs_text(pairs, fmt))
    modes = structured_latency(rows)
    if len(modes):
        head = "Structured vs free-form answers to the same prompts"
        click.echo(f"\n{'### ' if fmt == 'markdown' else ''}{head}\n\n" + _table(modes, fmt))
    if primary_scores(rows).notna().any():
        for provider, why in unpaired_providers(rows).items():
            click.echo(f"note: the paired comparison leaves out {provider}: {why}", err=True)
    from harness.report.fairness import fairness_note

    fairness = fairness_note(rows)
    if fairness:
        click.echo(f"note: {fairness}", err=True)


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


def _table(
    frame: Any,
    fmt: str,
    kinds: dict[str, Any] | None = None,
    missing: dict[str, str] | None = None,
    align: list[str] | None = None,
) -> str:
    """A DataFrame as a terminal table or Markdown (each cell formatted by its column's
    meaning, :mod:`harness.report.text`), or CSV/JSON (raw numbers)."""
    if fmt == "csv":
        return str(frame.to_csv(index=False))
    # Timestamps as ISO 8601 text (pandas writes epoch milliseconds by default, and
    # warns that it will change): what a reader of the JSON can take as a time.
    if fmt == "json":
        return str(frame.to_json(orient="records", indent=2, date_format="iso"))
    from harness.report.text import render_text

    return render_text(frame, fmt, kinds, missing, align=align)


def _diff_shown(table: Any) -> Any:
    """The diff for reading: each row's values formatted in its own metric's unit.

    ``a``, ``b``, ``change`` and the interval are in the unit of the row's ``metric``
    (ms, dollars, a rate, a score); ``threshold`` is relative to A for latency and cost
    (a percentage), absolute otherwise (see :func:`harness.report.diff.diff_runs`).
    """
    from harness.report.export import name_kind
    from harness.report.text import cell_text

    shown = table.copy()  # the other columns keep their dtype, so their own kind
    for column in ("a", "b", "change", "ci_low", "ci_high", "threshold"):
        if column not in shown:
            continue
        cells = []
        for metric, value in zip(table["metric"], table[column], strict=True):
            kind = name_kind(str(metric), [str(metric)]) or "float"
            if column == "threshold" and kind in ("ms", "usd"):
                kind = "rate"
            text = cell_text(value, kind)
            signed = column in ("change", "ci_low", "ci_high") and not text.startswith("-")
            cells.append(f"+{text}" if signed and text != "-" else text)
        shown[column] = cells
    return shown


FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "markdown", "csv", "json"]),
    default="table",
    show_default=True,
)


@main.command()
@click.argument("results_root", type=click.Path(path_type=Path))
@click.option("--run", "run_id", help="Run id (default: the latest run).")
@click.option(
    "--weights",
    default="quality=0.5,latency=0.3,cost=0.2",
    show_default=True,
    help="Weights of the dimensions quality, latency, cost (scores relative to the best).",
)
@click.option("--where", "where", default=None, help="Filter on tags, e.g. region=eu.")
@FORMAT
@click.option("--wide", is_flag=True, help="Every column, not only those that fit.")
@click.option("--columns", default=None, help="Exactly these columns, e.g. rank,provider,score.")
@_clean_errors
def leaderboard(
    results_root: Path,
    run_id: str | None,
    weights: str,
    where: str | None,
    fmt: str,
    wide: bool,
    columns: str | None,
) -> None:
    """Rank providers on a weighted score relative to the best; ties within noise share
    a rank range ("1–2"); mark the Pareto frontier."""
    from harness.report import leaderboard
    from harness.report.compare import DECISION_COLUMNS
    from harness.report.summary import load_run
    from harness.store.files import read_manifest

    chosen, rows = load_run(results_root, run_id, DECISION_COLUMNS)
    manifest = read_manifest(results_root / chosen)
    try:
        board = leaderboard.leaderboard(
            rows,
            weights=leaderboard.parse_weights(weights),
            tags=leaderboard.tags_from_manifest(manifest),
            where=leaderboard.parse_where(where) if where else None,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    from harness.report.capacity import capacity_table, with_capacity

    board = with_capacity(board, capacity_table(rows, manifest))
    notes = list(board.attrs.get("notes", []))
    if fmt in ("table", "markdown"):
        click.echo(f"leaderboard of run {chosen} (weights {board.attrs.get('weights')})\n")
    if fmt in ("csv", "json"):
        click.echo(_table(board, fmt))
    else:
        from harness.report import views

        tags = [c for c in board.columns if c not in leaderboard._BOARD_COLUMNS]
        try:
            text, dropped = views.terminal_table(
                board,
                [*views.LEADERBOARD_COLUMNS, *tags],
                fmt=fmt,
                wide=wide,
                columns=_column_list(columns),
            )
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        click.echo(text)
        hint = views.more_columns_hint(dropped)
        if hint and fmt == "table":
            click.echo(hint, err=True)
    for note in notes:
        click.echo(f"note: {note}", err=True)


@main.command()
@click.argument("results_root", type=click.Path(path_type=Path))
@click.argument("runs", nargs=-1)
@click.option(
    "--against",
    type=click.Choice(["previous"]),
    default=None,
    help="Compare the latest run (or the one given) with the run before it.",
)
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="METRIC=VALUE",
    help="Regression threshold, e.g. ttft_p50_ms=0.15 (relative) or "
    "exact_match_abstain=0.03 (absolute).",
)
@click.option("--all", "show_all", is_flag=True, help="Show every metric, not only changes.")
@FORMAT
@click.option("--wide", is_flag=True, help="Every column, not only those that fit.")
@click.option("--columns", default=None, help="Exactly these columns, e.g. provider,metric,b.")
@_clean_errors
def diff(
    results_root: Path,
    runs: tuple[str, ...],
    against: str | None,
    thresholds: tuple[str, ...],
    show_all: bool,
    fmt: str,
    wide: bool,
    columns: str | None,
) -> None:
    """Change per provider and metric between two runs, with significance.

    Exit 1 when a significant change crosses a regression threshold, so a nightly
    job fails on a real regression and not on noise.
    """
    from harness.report import diff
    from harness.report.summary import read_frame
    from harness.store.parts import list_runs

    known = list_runs(results_root)
    if against == "previous":
        if len(runs) > 1:
            raise click.UsageError("--against previous takes at most one run")
        b = runs[0] if runs else (known[-1] if known else "")
        if b not in known or known.index(b) == 0:
            raise click.UsageError(f"no run before {b!r} in {results_root}")
        a = known[known.index(b) - 1]
    elif len(runs) == 2:
        a, b = runs
    else:
        raise click.UsageError("give RUN_A RUN_B, or --against previous")
    parsed: dict[str, float] = {}
    for item in thresholds:
        name, _, value = item.partition("=")
        try:
            parsed[name.strip()] = float(value)
        except ValueError:
            raise click.BadParameter(f"{item!r}: expected METRIC=NUMBER") from None
    rows_a = read_frame(results_root, [a], diff.DIFF_ROW_COLUMNS)
    rows_b = read_frame(results_root, [b], diff.DIFF_ROW_COLUMNS)
    try:
        table = diff.diff_runs(rows_a, rows_b, {**diff.DEFAULT_THRESHOLDS, **parsed})
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    notes = list(table.attrs.get("notes", []))
    shown = (
        table if show_all or not len(table) else table[table["significant"] | table["regression"]]
    )
    if fmt in ("table", "markdown"):
        click.echo(
            f"{a} → {b}: {int(table['regression'].sum()) if len(table) else 0} regressions,"
            f" {int(table['significant'].sum()) if len(table) else 0} significant changes"
            f" of {len(table)} compared\n"
        )
    if not len(shown):
        click.echo("no significant change")
    elif fmt in ("table", "markdown"):
        from harness.report import views

        numbers = ("a", "b", "change", "ci_low", "ci_high", "threshold")
        try:
            text, dropped = views.terminal_table(
                _diff_shown(shown),
                views.diff_columns(shown),
                fmt=fmt,
                wide=wide,
                columns=_column_list(columns),
                right=numbers,
            )
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        click.echo(text)
        hint = views.more_columns_hint(dropped)
        if hint and fmt == "table":
            click.echo(hint, err=True)
    else:
        click.echo(_table(shown, fmt))
    for note in notes:
        click.echo(f"note: {note}", err=True)
    if len(table) and table["regression"].any():
        sys.exit(1)


def _gate_options(func: F) -> F:
    """The options of ``harness gate`` (and of ``compare``, its older name)."""
    options = [
        click.argument("results_root", type=click.Path(path_type=Path)),
        click.option("--baseline", required=True, help="Provider in use today."),
        click.option("--candidate", required=True, help="Provider to adopt."),
        click.option("--run", "run_id", help="Run id (default: the latest run)."),
        click.option("--suite", default=None, help="Only this suite."),
        click.option(
            "--max-quality-drop",
            type=float,
            default=0.02,
            show_default=True,
            help="Non-inferiority margin on exact_match_abstain (absolute).",
        ),
        click.option("--confidence", type=float, default=0.95, show_default=True),
        click.option("--max-p95-latency-ms", type=float, default=None, help="E2E p95 limit."),
        click.option(
            "--max-usd-per-1k", type=float, default=None, help="Cost limit per 1k requests."
        ),
        click.option(
            "--checks",
            default=None,
            help="Checks to run, e.g. latency,cost (of quality, latency, cost). Default:"
            " quality when the run has scores, latency and cost when a limit is given.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _run_gate(
    results_root: Path,
    baseline: str,
    candidate: str,
    run_id: str | None,
    suite: str | None,
    max_quality_drop: float,
    confidence: float,
    max_p95_latency_ms: float | None,
    max_usd_per_1k: float | None,
    checks: str | None,
) -> None:
    from harness.report import gate
    from harness.report.compare import DECISION_COLUMNS
    from harness.report.summary import load_run

    try:
        chosen = gate.parse_checks(checks) if checks is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    _, rows = load_run(results_root, run_id, DECISION_COLUMNS)
    try:
        result = gate.adoption_gate(
            rows,
            baseline,
            candidate,
            max_quality_drop=max_quality_drop,
            confidence=confidence,
            max_p95_latency_ms=max_p95_latency_ms,
            max_usd_per_1k=max_usd_per_1k,
            suite=suite,
            checks=chosen,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    click.echo(gate.render_gate(result))
    sys.exit(result.exit_code)


@main.command("gate")
@_gate_options
@_clean_errors
def gate_command(**options: Any) -> None:
    """Adoption gate: should CANDIDATE replace BASELINE? Exit 0 adopt, 1 do not adopt.

    Quality is non-inferiority on exact_match_abstain (a failing check says how many
    cases it would need); latency and cost compare the candidate with their limits.
    """
    _run_gate(**options)


@main.command()
@_gate_options
@_clean_errors
def compare(**options: Any) -> None:
    """The adoption gate under its older name (see ``harness gate``)."""
    _run_gate(**options)


HISTORY_BATCH_RUNS = 32
"""Runs read at once by ``history`` for a metric of history_fast (~30 MB of 10k-row runs)."""


@main.command()
@click.argument("results_root", type=click.Path(path_type=Path))
@click.option("--metric", required=True, help="A summary column, e.g. ttft_p50_ms.")
@click.option("--provider", default=None)
@FORMAT
@_clean_errors
def history(results_root: Path, metric: str, provider: str | None, fmt: str) -> None:
    """A metric of the summary over every run in RESULTS_ROOT, oldest first."""
    from harness.report import history
    from harness.report.history_fast import FAST_METRICS, fast_columns
    from harness.report.summary import read_frame
    from harness.store.parts import list_runs

    runs = list_runs(results_root)

    def batches(columns: Sequence[str]) -> Any:
        # One scan per batch of runs, of the few columns the metric needs (a year of
        # nightly runs at once held 1 GB); its rows name their runs, so each
        # directory must hold the rows of the run it is named after (a copied or
        # renamed run directory is read one directory at a time).
        for start in range(0, len(runs), HISTORY_BATCH_RUNS):
            batch = runs[start : start + HISTORY_BATCH_RUNS]
            frame = read_frame(results_root, batch, columns)
            if sorted(str(r) for r in frame["run_id"].dropna().unique()) == sorted(batch):
                yield frame
            else:
                yield from (read_frame(results_root, [run], columns) for run in batch)

    try:
        if metric in FAST_METRICS:
            series = history.history(batches(fast_columns(metric)), metric, provider)
        else:
            # Each run's own summary (with its SLOs), kept in its directory once computed;
            # one run at a time, never the whole root in memory.
            series = history.run_history(results_root, runs, metric, provider)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    from harness.report.export import name_kind

    click.echo(_table(series, fmt, kinds={"value": name_kind(metric, [metric]) or "float"}))


@main.group()
def datasets() -> None:
    """Convert question-answering (and BFCL tool-calling) datasets into the project's JSONL."""


@datasets.command("import")
@click.argument(
    "fmt",
    metavar="FORMAT",
    type=click.Choice(["auto", "jsonl", "csv", "parquet", "squad", "ragas", "bfcl"]),
)
@click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--answers",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="bfcl: the possible_answer file of SRC (not needed for irrelevance cases).",
)
@_clean_errors
def datasets_import(fmt: str, src: Path, dest: Path, answers: Path | None) -> None:
    """Convert SRC (FORMAT: auto, jsonl, csv, parquet, squad, ragas) into JSONL at DEST;
    ``bfcl``: a Berkeley Function Calling Leaderboard question file into tool cases."""
    if fmt == "bfcl":
        from harness.suites.tool_data import import_bfcl

        n, skipped = import_bfcl(src, dest, answers)
        for why in skipped:
            click.echo(f"note: left out {why}", err=True)
    else:
        if answers is not None:
            raise click.BadParameter("--answers is for the bfcl format only")
        from harness.suites.datasets import import_dataset

        n = import_dataset(fmt, src, dest)
    click.echo(f"{dest}: {n} cases")


@main.group()
def score() -> None:
    """Score predictions offline, as the official scripts do."""


@score.command("squad")
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("preds", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_clean_errors
def score_squad(data: Path, preds: Path) -> None:
    """Print the official SQuAD 2.0 evaluation (evaluate-v2.0.py's JSON) of PREDS on DATA."""
    import json

    from harness.scoring import evaluate_squad, load_squad_file

    try:
        predictions = json.loads(preds.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"{preds}: not JSON: {exc}") from None
    if not isinstance(predictions, dict):
        raise click.BadParameter(f"{preds}: expected an object of id -> answer")
    result = evaluate_squad(load_squad_file(data), predictions)
    click.echo(json.dumps(result, indent=2))


@main.command()
@click.argument("targets", nargs=-1, required=True)
@click.option(
    "--within",
    type=click.IntRange(min=0),
    default=None,
    help="Exit 1 if a model is deprecated or will be within DAYS days.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@_clean_errors
def models(targets: tuple[str, ...], within: int | None, fmt: str) -> None:
    """Catalog of TARGETS (config files, or litellm model strings): prices, context window,
    capabilities, deprecation date and successor from litellm's bundled table.

    Example: harness models configs/mine.yaml openai/gpt-4o-mini --within 90"""
    import json
    from datetime import UTC, datetime

    import pandas as pd

    from harness.cost import price_table
    from harness.cost.catalog import audit, lookup

    names: list[str] = []
    for target in targets:
        if target.endswith((".yaml", ".yml")):
            from harness.config.spec import load_config
            from harness.errors import ConfigError

            if not Path(target).is_file():  # a typo is no model name to look up
                raise ConfigError(f"{target}: no such config file")

            spec = load_config(target)
            names += [
                p.model
                for p in spec.providers
                if p.model and p.simulate is None and p.local is None
            ]
        else:
            names.append(target)
    table = price_table.model_cost()
    today = datetime.now(UTC).date()
    rows = []
    for info, check in zip(
        [lookup(n, table) for n in names],
        audit(names, table, today=today, within_days=within),
        strict=True,
    ):
        rows.append(
            {
                "model": info.model,
                "provider": info.provider,
                "known": info.known,
                "input_per_mtok": info.input_per_mtok,
                "output_per_mtok": info.output_per_mtok,
                "cached_input_per_mtok": info.cached_input_per_mtok,
                "max_input_tokens": info.max_input_tokens,
                "max_output_tokens": info.max_output_tokens,
                "capabilities": ",".join(info.capabilities),
                "deprecation_date": info.deprecation_date.isoformat()
                if info.deprecation_date
                else None,
                "days_left": check.days_left,
                "successor_model": info.successor_model,
                "status": check.status,
            }
        )
    frame = pd.DataFrame(rows)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif len(frame):
        from harness.report.export import Kind
        from harness.report.text import render_text

        shown = frame.drop(columns=["capabilities", "cached_input_per_mtok"])
        kinds: dict[str, Kind] = {
            "input_per_mtok": "usd",
            "output_per_mtok": "usd",
            "days_left": "int",
        }
        click.echo(render_text(shown, "table", kinds))
    else:
        click.echo("no models to check (simulated and local providers have no catalog entry)")
    if within is not None:
        flagged = [r for r in rows if r["status"] in ("deprecated", "deprecating")]
        if flagged:
            for r in flagged:
                click.echo(
                    f"{r['model']}: {r['status']} ({r['deprecation_date']}),"
                    f" successor: {r['successor_model'] or 'none listed'}",
                    err=True,
                )
            sys.exit(1)


@main.command()
@click.argument("results_root", type=click.Path(path_type=Path))
@click.option(
    "--to",
    "dest",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file: .csv, .xlsx, .md, .html or .json.",
)
@click.option("--run", "run_id", help="Run id (default: the latest run).")
@click.option("--baseline", default=None, help="With --candidate: the gate's verdict first.")
@click.option("--candidate", default=None, help="With --baseline: the provider to adopt.")
@click.option("--max-quality-drop", type=float, default=0.02, show_default=True)
@click.option("--max-p95-latency-ms", type=float, default=None, help="The gate's E2E p95 limit.")
@click.option("--max-usd-per-1k", type=float, default=None, help="The gate's cost limit.")
@click.option("--checks", default=None, help="The gate's checks, e.g. latency,cost.")
@_clean_errors
def export(
    results_root: Path,
    dest: Path,
    run_id: str | None,
    baseline: str | None,
    candidate: str | None,
    max_quality_drop: float,
    max_p95_latency_ms: float | None,
    max_usd_per_1k: float | None,
    checks: str | None,
) -> None:
    """Export a run's report, decision first: the answer (leaderboard, Pareto front, the
    gate's verdict with --baseline/--candidate, warnings), charts, per-suite tables, then
    the raw requests."""
    from harness.report.build import build_report
    from harness.report.export import export as write
    from harness.report.export import formats

    if dest.suffix.lower() not in formats():
        # Bad input (exit 2), found before any run is read.
        click.echo(
            f"error: {dest}: unknown export format {dest.suffix or '(no extension)'!r};"
            f" known: {', '.join(formats())}",
            err=True,
        )
        sys.exit(2)
    from harness.report import gate

    try:
        options = {
            "max_quality_drop": max_quality_drop,
            "max_p95_latency_ms": max_p95_latency_ms,
            "max_usd_per_1k": max_usd_per_1k,
            "checks": gate.parse_checks(checks) if checks else None,
        }
        report = build_report(
            results_root, run_id, baseline=baseline, candidate=candidate, gate_options=options
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    click.echo(f"wrote {write(report, dest)}")


if __name__ == "__main__":
    main()
