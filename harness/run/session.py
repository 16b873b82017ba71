"""``harness run``: the one entry point that turns a validated config into a stored run.

Order matters: everything that can fail on bad input (missing keys, bad run
id, simulators that do not start) fails before the first request is sent.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import platform
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import __version__
from harness.config.spec import RunSpec
from harness.cost import price_table
from harness.errors import StoreError
from harness.run.budget import Budget, recovered_spend
from harness.run.cache import ResponseCache
from harness.run.chains import attach_previous
from harness.run.clock import MAX_LAG_MS
from harness.run.limits import RetryPolicy
from harness.run.scheduler import UNAVAILABLE, RunOutcome
from harness.secrets import redact, scrub
from harness.store.files import read_manifest, validate_run_id, write_manifest
from harness.store.journal import JournalWriter
from harness.store.resume import ResumeState, prepare_resume

if TYPE_CHECKING:
    pass
from harness.run.endpoints import NOT_STARTED, build_endpoints, key_sources, resolve_keys
from harness.run.executors import Job, executor_for
from harness.run.plan import build_plan, remaining, skip_unavailable
from harness.run.servers import _gone, _health, local_server_processes, scrubbed_logs, simulators


@dataclass
class RunResult:
    """Where a finished (or interrupted) run was stored."""

    run_id: str
    run_dir: Path
    outcome: RunOutcome | None  # None when interrupted before the plan finished
    status: str
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    stopped_reason: str | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    unavailable: dict[str, str] = dataclasses.field(default_factory=dict)
    """Providers not (or no longer) sent to, and why: failed to start, died, or unreachable."""


def new_run_id(name: str, root: Path) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id, n = f"{stamp}-{name}", 1
    while (root / run_id).exists():
        n += 1
        run_id = f"{stamp}-{name}-{n}"
    return run_id


def versions() -> dict[str, str]:
    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {
        "harness": __version__,
        "litellm": version("litellm"),
        "python": platform.python_version(),
        "pyarrow": version("pyarrow"),
        "pandas": version("pandas"),
        "aiohttp": version("aiohttp"),
    }


DEPRECATION_WARNING_DAYS = 90


def deprecation_warnings(spec: RunSpec) -> list[str]:
    """Configured models that are deprecated, or will be within 90 days."""
    from harness.cost.catalog import audit

    models = sorted(
        {p.model for p in spec.providers if p.model and not p.simulated and not p.local}
    )
    today = datetime.now(UTC).date()
    warnings = []
    for row in audit(
        models, price_table.model_cost(), today=today, within_days=DEPRECATION_WARNING_DAYS
    ):
        if row.status in ("deprecated", "deprecating"):
            successor = f"; successor: {row.successor_model}" if row.successor_model else ""
            warnings.append(f"{row.model} is {row.status} ({row.deprecation_date}){successor}")
    return warnings


def execute(
    spec: RunSpec,
    *,
    out: Path | None = None,
    run_id: str | None = None,
    resume: str | None = None,
    show_progress: bool = True,
    notify: Callable[[str, str], None] | None = None,
) -> RunResult:
    """Run every suite against every provider and store one row per request.

    With ``resume``, continue that run: only requests without a finished row
    are sent, so no case is paid for twice. ``notify(provider, message)`` hears at
    once of a failed warm-up or a provider that is gone (with its log's tail).
    """
    root = Path(out if out is not None else spec.run.out)
    spec, skipped = skip_unavailable(spec)
    keys = resolve_keys(spec)
    warnings = deprecation_warnings(spec)
    plan = full_plan = build_plan(spec)
    planned = sum(len(p.requests) for p in plan)
    previous: dict[str, Any] = {}
    resumed = ResumeState(set())
    if resume is not None:
        run_id = validate_run_id(resume)
        previous = read_manifest(root / run_id)
        if not previous:
            raise StoreError(f"{root / run_id}: no such run to resume (no manifest)")
        if previous.get("config_hash") != spec.config_hash:
            raise StoreError(
                f"{spec.path} changed since run {run_id} was planned (config sha256"
                f" {str(previous.get('config_hash'))[:12]} → {spec.config_hash[:12]});"
                " resuming would mix two plans"
            )
        resumed = prepare_resume(root / run_id)
        plan = remaining(plan, resumed.finished)
        plan = attach_previous(plan, root / run_id)  # a finished turn's answer, for the next
        resumed.finished = set()  # the plan holds them now (a bitmap): not a set of a million ints
    elif run_id is not None:
        validate_run_id(run_id)
        if (root / run_id).exists():
            raise StoreError(f"{root / run_id} already exists; choose another --run-id")
    else:
        run_id = new_run_id(spec.run.name, root)
    to_send = sum(len(p.requests) for p in plan)
    run_dir = root / run_id

    run_dir.mkdir(parents=True, exist_ok=True)
    known: list[str | None] = []  # every secret value the run sends
    with (
        scrubbed_logs(run_dir, known),  # exits last: after the servers closed their logs
        simulators(spec, run_dir / "_sim.log") as sim,
        local_server_processes(spec, run_dir) as (servers, not_started),
    ):
        local_bases = {name: server.api_base for name, server in servers.items()}
        local_bases |= dict.fromkeys(not_started, NOT_STARTED)
        for name, reason in not_started.items():
            if notify is not None:
                notify(name, f"not sent to: {reason}")

        def tell(provider: str, message: str) -> None:
            if notify is None:
                return
            server = servers.get(provider)
            if server is not None and server.running and "last lines of" not in message:
                message += "\n" + server.log_tail()  # alive but failing: its log says why
            notify(provider, message)

        endpoints, judge_endpoints = build_endpoints(spec, keys, sim, local_bases)
        health = _health(spec, sim, servers, picklable=spec.run.executor_name != "inline")
        # The keys from the environment and the resolved header secrets (not the
        # placeholders such as "no-key" that the harness itself sends).
        known.extend(keys.values())
        for e in (*endpoints.values(), *judge_endpoints.values()):
            known.extend(e.secrets)
        # With worker processes, each builds its own sender (and imports litellm).
        cache = (
            ResponseCache(Path(spec.run.response_cache), run_id, root)
            if spec.run.response_cache
            else None
        )
        # Every row is journaled as it arrives; flush_s is how often a part is compacted.
        writer = JournalWriter(run_dir, run_id, flush_s=spec.run.flush_s)
        if resume:
            writer.rows_written = planned - to_send
        manifest: dict[str, Any] = {
            "run_id": run_id,
            "name": spec.run.name,
            "status": "running",
            "started_at": previous.get("started_at") or datetime.now(UTC).isoformat(),
            "ended_at": None,
            "config_path": str(spec.path),
            "config_hash": spec.config_hash,
            # Holds env var names and ${VAR} references, never their values; redacted
            # all the same, in case a value slipped past the config check.
            "config": redact(spec.resolved, *known),
            "versions": versions(),
            "price_table": price_table.identity(),
            "host": {
                "hostname": socket.gethostname(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "argv0": Path(sys.argv[0]).name,
            },
            "providers": {
                e.provider: {
                    "model": e.model,
                    "simulated": e.simulated,
                    "transport": e.transport,
                    "price_source": e.price.source,
                    "tags": spec.provider(e.provider).tags,
                }
                for e in endpoints.values()
            },
            "judges": {
                s: {"model": e.model, "price_source": e.price.source}
                for s, e in judge_endpoints.items()
            },
            "skipped_providers": skipped,
            "model_warnings": warnings,
            "planned_requests": planned,
            "resumes": [
                *previous.get("resumes", []),
                *(
                    [
                        {
                            "at": datetime.now(UTC).isoformat(),
                            "to_send": to_send,
                            "notes": resumed.notes,
                        }
                    ]
                    if resume
                    else []
                ),
            ],
            "time_bounded_phases": sum(p.duration_s is not None for p in plan),
            "executor": {"name": spec.run.executor_name},
        }
        write_manifest(run_dir, manifest)
        progress = _progress(to_send, show_progress)

        def sink(row: dict[str, Any]) -> None:
            if row.get("error_type") == UNAVAILABLE:  # never sent: name what it was not sent to
                endpoint = endpoints[row["provider"]]
                row.update(model=endpoint.model, simulated=endpoint.simulated)
            for column in ("error_message", "judge_error"):  # in case a transport missed one
                if row.get(column):
                    row[column] = scrub(row[column], *known)
            writer.add(row)
            progress.update(1)

        prices = {name: e.price for name, e in endpoints.items()}
        budget = (
            Budget(
                spec.run.budget_usd,
                prices,
                {suite: e.price for suite, e in judge_endpoints.items()},
                # Resumed: what the earlier attempts spent counts against the cap.
                spent_usd=recovered_spend(
                    resumed.spent_usd,
                    full_plan,
                    prices,
                    spec.run.warmup_requests,
                    attempts=1 + len(previous.get("resumes", [])),
                )
                if resume
                else 0.0,
            )
            if spec.run.budget_usd is not None
            else None
        )

        job = Job(
            phases=plan,
            endpoints=endpoints,
            judge_endpoints=judge_endpoints,
            concurrency=spec.run.concurrency,
            provider_concurrency={p.name: p.concurrency for p in spec.providers if p.concurrency},
            warmup_requests=spec.run.warmup_requests,
            retries={
                p.name: RetryPolicy(max_retries=p.max_retries, base_s=p.retry_base_s)
                for p in spec.providers
            },
            rates={p.name: (p.rpm, p.tpm) for p in spec.providers if p.rpm or p.tpm},
            unavailable=not_started,
            health=health,
            cache=cache,
            budget=budget,
            key_sources=key_sources(spec, endpoints, judge_endpoints),
        )

        status = "interrupted"
        outcome = None
        try:
            executor = executor_for(spec.run.workers, spec.run.executor_name, spec.run.ray)
            outcome = executor.run(job, sink, notify=tell)
            status = "completed"
        except KeyboardInterrupt:
            # Ctrl-C: in-flight requests were cancelled and recorded as such;
            # the rows are flushed below and the manifest says "interrupted".
            status = "interrupted"
        finally:
            progress.close()
            writer.close()  # compacts the last segment: a finished run is all Parquet
            # After Ctrl-C the children got the SIGINT too: that is no failure of theirs.
            unavailable = _gone(outcome, not_started, health if status == "completed" else {})
            if unavailable:
                manifest["unavailable_providers"] = unavailable
            manifest.update(
                status=status,
                ended_at=datetime.now(UTC).isoformat(),
                rows_written=writer.rows_written,
                not_sent=max(0, to_send - writer.rows_written),
            )
            if budget is not None:
                manifest["budget"] = budget.summary()
                if budget.stopped_reason:
                    manifest["stopped_reason"] = budget.stopped_reason
            if outcome is not None:
                manifest.update(
                    errors=outcome.errors,
                    retries=outcome.retries,
                    cancelled=outcome.cancelled,
                    warmup_errors=outcome.warmup_errors,
                    clock_health={
                        **outcome.clock,
                        "untrustworthy_rows": outcome.untrustworthy,
                        "measured_rows": outcome.measured,
                        "warning": clock_warning(outcome),
                    },
                )
            if outcome is not None and outcome.executor:
                manifest["executor"].update(outcome.executor)  # ray: its nodes and clocks
            if any(p.pattern != "concurrency" for p in plan):
                manifest["open_loop"] = open_loop_block(run_dir)
            if outcome is not None and outcome.capacity:
                manifest["capacity"] = outcome.capacity  # each search's levels and answer
            write_manifest(run_dir, manifest)
    stopped = budget.stopped_reason if budget is not None else None
    return RunResult(run_id, run_dir, outcome, status, skipped, stopped, warnings, unavailable)


def open_loop_block(run_dir: Path) -> dict[str, Any]:
    """Offered vs achieved rate of each open-loop level, from the rows as stored,
    with the levels that were over capacity (the summary's definition)."""
    from harness.report.summary import open_loop_capacity
    from harness.store.dataset import read_rows

    columns = ["suite", "load_level", "provider", "warmup", "scheduled_s", "sent_s"]
    try:
        rows = read_rows(run_dir.parent, [run_dir.name], columns=columns).to_pandas()
    except StoreError:
        return {}  # nothing was stored (interrupted before the first row)
    levels = open_loop_capacity(rows)
    return {
        "levels": levels,
        "over_capacity": [
            f"{lv['suite']} {lv['load_level']} {lv['provider']}"
            for lv in levels
            if lv["over_capacity"]
        ],
    }


def clock_warning(outcome: RunOutcome) -> str | None:
    """A sentence for the user when the client's own timestamps cannot be trusted.

    Counts and figures are those of measured rows (not warm-ups, not cache hits):
    the worst lag and CPU seen while a measured request was in flight.
    """
    if not outcome.untrustworthy:
        return None
    return (
        f"{outcome.untrustworthy} of {outcome.measured} measured requests ran while the client"
        f" was saturated (event-loop lag up to {outcome.clock.get('max_loop_lag_ms', 0):.1f} ms"
        f" while they were in flight, over the {MAX_LAG_MS:g} ms a timestamp may be late;"
        f" CPU up to {outcome.clock.get('max_client_cpu', 0):.0%}); their latencies are"
        " overstated. Lower concurrency, use more worker processes, or run on an idle machine."
        " Rows: clock_ok = false."
    )


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, show: bool) -> Any:
    if not show:
        return _NoProgress()
    from tqdm import tqdm

    # disable=None: a bar on a terminal, nothing in CI logs or redirected output.
    return tqdm(total=total, unit="req", desc="requests", dynamic_ncols=True, disable=None)
