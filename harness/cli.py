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
        from harness.errors import ConfigError, HarnessError, StoreError
        from harness.suites.datasets import DatasetError

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
@click.option("--dry-run", is_flag=True, help="Print the plan and a cost estimate; send nothing.")
@click.option(
    "--resume",
    "resume",
    metavar="RUN_ID",
    help="Continue RUN_ID: send only the requests that have no finished row.",
)
@_clean_errors
def run(
    config: Path,
    out: Path | None,
    run_id: str | None,
    no_progress: bool,
    dry_run: bool,
    resume: str | None,
) -> None:
    """Send every suite of CONFIG to every provider, store the rows, print the comparison."""
    from harness.config.spec import load_config
    from harness.report import load_summary, render
    from harness.run.session import execute

    spec = load_config(config)
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
    _, rows, table = load_summary(root, result.run_id)
    click.echo(render(table, "table", title=f"run {result.run_id}"))
    _echo_pairs(rows, "table")
    click.echo(f"\n{len(rows)} rows in {result.run_dir}")
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
    from harness.report.failures import provider_failures

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
    from harness.run.session import plan_count

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
@_clean_errors
def summarize(results_root: Path, run_id: str | None, fmt: str) -> None:
    """Print the comparison table of a run from the Parquet data alone."""
    from harness.report import load_summary, render

    chosen, rows, table = load_summary(results_root, run_id)
    title = f"run {chosen}" if fmt in ("table", "markdown") else None
    click.echo(render(table, fmt, title=title))
    if fmt in ("table", "markdown"):
        _echo_pairs(rows, fmt)


def _print_dry_run(spec: Any) -> None:
    import pandas as pd

    from harness.report.text import cell_text, render_text
    from harness.run.session import deprecation_warnings, plan_estimate, unset_key_envs

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
                "requests": f"{line.requests:,}+ (time-bounded)"
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
    from harness.report.summary import (
        PRIMARY_QUALITY,
        paired_quality,
        render_pairs,
        unpaired_providers,
    )

    pairs = paired_quality(rows)
    if len(pairs):
        click.echo("\n" + render_pairs(pairs, fmt))
    if PRIMARY_QUALITY in rows and rows[PRIMARY_QUALITY].notna().any():
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
    if fmt == "json":
        return str(frame.to_json(orient="records", indent=2))
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
@_clean_errors
def leaderboard(
    results_root: Path, run_id: str | None, weights: str, where: str | None, fmt: str
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
    notes = list(board.attrs.get("notes", []))
    if fmt in ("table", "markdown"):
        click.echo(f"leaderboard of run {chosen} (weights {board.attrs.get('weights')})\n")
    click.echo(_table(board, fmt, missing={"usd_per_1k_requests": "no price"}))
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
@_clean_errors
def diff(
    results_root: Path,
    runs: tuple[str, ...],
    against: str | None,
    thresholds: tuple[str, ...],
    show_all: bool,
    fmt: str,
) -> None:
    """Change per provider and metric between two runs, with significance.

    Exit 1 when a significant change crosses a regression threshold, so a nightly
    job fails on a real regression and not on noise.
    """
    from harness.report import diff
    from harness.report.compare import DECISION_COLUMNS
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
    rows_a = read_frame(results_root, [a], DECISION_COLUMNS)
    rows_b = read_frame(results_root, [b], DECISION_COLUMNS)
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
        from harness.report.text import text_cells

        numbers = ("a", "b", "change", "ci_low", "ci_high", "threshold")
        _, align = text_cells(shown)  # the raw values' alignment: numbers right
        align = ["right" if c in numbers else a for c, a in zip(shown, align, strict=True)]
        click.echo(_table(_diff_shown(shown), fmt, align=align))
    else:
        click.echo(_table(shown, fmt))
    for note in notes:
        click.echo(f"note: {note}", err=True)
    if len(table) and table["regression"].any():
        sys.exit(1)


@main.command()
@click.argument("results_root", type=click.Path(path_type=Path))
@click.option("--baseline", required=True, help="Provider in use today.")
@click.option("--candidate", required=True, help="Provider to adopt.")
@click.option("--run", "run_id", help="Run id (default: the latest run).")
@click.option("--suite", default=None, help="Only this suite.")
@click.option(
    "--max-quality-drop",
    type=float,
    default=0.02,
    show_default=True,
    help="Non-inferiority margin on exact_match_abstain (absolute).",
)
@click.option("--confidence", type=float, default=0.95, show_default=True)
@click.option("--max-p95-latency-ms", type=float, default=None, help="E2E p95 limit.")
@click.option("--max-usd-per-1k", type=float, default=None, help="Cost limit per 1k requests.")
@_clean_errors
def compare(
    results_root: Path,
    baseline: str,
    candidate: str,
    run_id: str | None,
    suite: str | None,
    max_quality_drop: float,
    confidence: float,
    max_p95_latency_ms: float | None,
    max_usd_per_1k: float | None,
) -> None:
    """Adoption gate: should CANDIDATE replace BASELINE? Exit 0 adopt, 1 do not adopt."""
    from harness.report import gate
    from harness.report.compare import DECISION_COLUMNS
    from harness.report.summary import load_run

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
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    click.echo(gate.render_gate(result))
    sys.exit(result.exit_code)


@main.command()
@click.argument("results_root", type=click.Path(path_type=Path))
@click.option("--metric", required=True, help="A summary column, e.g. ttft_p50_ms.")
@click.option("--provider", default=None)
@FORMAT
@_clean_errors
def history(results_root: Path, metric: str, provider: str | None, fmt: str) -> None:
    """A metric of the summary over every run in RESULTS_ROOT, oldest first."""
    from harness.report import history
    from harness.report.summary import SUMMARY_COLUMNS, read_frame
    from harness.store.parts import list_runs

    runs = list_runs(results_root)
    # One run at a time, never the whole root in memory; each without its bulky columns.
    rows = (read_frame(results_root, [run], SUMMARY_COLUMNS) for run in runs)
    try:
        series = history.history(rows, metric, provider)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    from harness.report.export import name_kind

    click.echo(_table(series, fmt, kinds={"value": name_kind(metric, [metric]) or "float"}))


@main.group()
def datasets() -> None:
    """Convert question-answering datasets into the project's JSONL."""


@datasets.command("import")
@click.argument(
    "fmt",
    metavar="FORMAT",
    type=click.Choice(["auto", "jsonl", "csv", "parquet", "squad", "ragas"]),
)
@click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@_clean_errors
def datasets_import(fmt: str, src: Path, dest: Path) -> None:
    """Convert SRC (FORMAT: auto, jsonl, csv, parquet, squad, ragas) into JSONL at DEST."""
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
@_clean_errors
def export(results_root: Path, dest: Path, run_id: str | None) -> None:
    """Export a run's comparison, paired tests and per-request rows to a file."""
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
    report = build_report(results_root, run_id)
    click.echo(f"wrote {write(report, dest)}")


if __name__ == "__main__":
    main()
