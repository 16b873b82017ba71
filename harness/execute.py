"""``harness run``: the one entry point that turns a validated config into a stored run.

Order matters: everything that can fail on bad input (missing keys, bad run
id, simulators that do not start) fails before the first request is sent.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import itertools
import os
import platform
import socket
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import __version__
from harness.config import ProviderConfig, RunSpec
from harness.errors import ConfigError, StoreError
from harness.providers.trace import Endpoint
from harness.providers.transport import import_litellm, send
from harness.runner import Phase, RunOutcome, run_phases
from harness.sim import SimProcess
from harness.store import PartWriter, validate_run_id, write_manifest
from harness.suites import SUITE_KINDS, RequestSpec


@dataclass
class RunResult:
    """Where a finished (or interrupted) run was stored."""

    run_id: str
    run_dir: Path
    outcome: RunOutcome | None  # None when interrupted before the plan finished
    status: str


def build_plan(spec: RunSpec) -> list[Phase]:
    """Every request of the run, grouped in phases: suite × provider × load level."""
    phases: list[Phase] = []
    index = 0
    for suite in spec.suites:
        load = {p.label: p for p in suite.phases()}
        for provider in spec.providers:
            requests = SUITE_KINDS[suite.kind].plan(suite, provider.name)
            for label, group in itertools.groupby(requests, key=lambda r: r.load_level):
                batch = list(group)
                how = load[label]
                phases.append(
                    Phase(
                        provider.name,
                        batch,
                        how.pattern,
                        how.level,
                        how.duration_s,
                        how.seed,
                        first_index=index,
                    )
                )
                index += len(batch)
    return phases


def resolve_keys(spec: RunSpec) -> dict[str, str | None]:
    """Read each provider's API key from its environment variable, or fail before sending."""
    keys: dict[str, str | None] = {}
    missing = []
    for i, provider in enumerate(spec.providers):
        if provider.api_key_env is None:
            keys[provider.name] = None
        elif os.environ.get(provider.api_key_env):
            keys[provider.name] = os.environ[provider.api_key_env]
        else:
            missing.append(f"{spec.path}: providers[{i}].api_key_env: {provider.api_key_env}")
    if missing:
        raise ConfigError(
            "environment variables not set (export them, or remove the provider):\n"
            + "\n".join(missing)
        )
    return keys


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
    }


def _endpoint(
    provider: ProviderConfig, spec: RunSpec, key: str | None, sim: SimProcess | None
) -> Endpoint:
    api_base = provider.api_base
    if provider.simulated:
        assert sim is not None
        api_base, key = sim.api_base, "sim-no-key"
    elif key is None and api_base is not None:
        # OpenAI-compatible servers often need no key, but the OpenAI client
        # refuses to start without one.
        key = "no-key"
    assert provider.model is not None
    return Endpoint(
        provider=provider.name,
        model=provider.model,
        simulated=provider.simulated,
        api_base=api_base,
        api_key=key,
        params=provider.params,
        timeout_s=provider.timeout_s or spec.run.timeout_s,
    )


def execute(
    spec: RunSpec,
    *,
    out: Path | None = None,
    run_id: str | None = None,
    show_progress: bool = True,
) -> RunResult:
    """Run every suite against every provider and store one row per request."""
    root = Path(out if out is not None else spec.run.out)
    keys = resolve_keys(spec)
    if run_id is not None:
        validate_run_id(run_id)
        if (root / run_id).exists():
            raise StoreError(f"{root / run_id} already exists; choose another --run-id")
    else:
        run_id = new_run_id(spec.run.name, root)
    plan = build_plan(spec)
    run_dir = root / run_id

    simulated = {p.name: p.simulate for p in spec.providers if p.simulate is not None}
    sim = SimProcess(simulated).start() if simulated else None
    try:
        endpoints = {p.name: _endpoint(p, spec, keys[p.name], sim) for p in spec.providers}
        litellm = import_litellm()
        writer = PartWriter(run_dir, run_id, flush_s=spec.run.flush_s)
        manifest: dict[str, Any] = {
            "run_id": run_id,
            "name": spec.run.name,
            "status": "running",
            "started_at": datetime.now(UTC).isoformat(),
            "ended_at": None,
            "config_path": str(spec.path),
            "config_hash": spec.config_hash,
            "config": spec.resolved,  # holds env var names, never their values
            "versions": versions(),
            "host": {
                "hostname": socket.gethostname(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "argv0": Path(sys.argv[0]).name,
            },
            "providers": {
                p.name: {"model": p.model, "simulated": p.simulated, "tags": p.tags}
                for p in spec.providers
            },
            "planned_requests": sum(len(p.requests) for p in plan),
            "time_bounded_phases": sum(p.duration_s is not None for p in plan),
        }
        write_manifest(run_dir, manifest)
        progress = _progress(sum(len(p.requests) for p in plan), show_progress)

        def sink(row: dict[str, Any]) -> None:
            writer.add(row)
            progress.update(1)

        async def send_one(request: RequestSpec) -> dict[str, Any]:
            return await send(litellm, endpoints[request.provider], request)

        status = "interrupted"
        outcome = None
        try:
            outcome = asyncio.run(
                run_phases(
                    plan,
                    send_one,
                    sink,
                    concurrency=spec.run.concurrency,
                    provider_concurrency={
                        p.name: p.concurrency for p in spec.providers if p.concurrency
                    },
                    warmup_requests=spec.run.warmup_requests,
                )
            )
            status = "completed"
        except KeyboardInterrupt:
            # Ctrl-C: in-flight requests were cancelled and recorded as such;
            # the rows are flushed below and the manifest says "interrupted".
            status = "interrupted"
        finally:
            progress.close()
            writer.flush()
            manifest.update(
                status=status,
                ended_at=datetime.now(UTC).isoformat(),
                rows_written=writer.rows_written,
            )
            if outcome is not None:
                manifest.update(
                    errors=outcome.errors,
                    cancelled=outcome.cancelled,
                    warmup_errors=outcome.warmup_errors,
                    clock_health={
                        **outcome.clock,
                        "untrustworthy_rows": outcome.untrustworthy,
                        "warning": clock_warning(outcome),
                    },
                )
            write_manifest(run_dir, manifest)
    finally:
        if sim is not None:
            sim.stop()
    return RunResult(run_id, run_dir, outcome, status)


def clock_warning(outcome: RunOutcome) -> str | None:
    """A sentence for the user when the client's own timestamps cannot be trusted."""
    if not outcome.untrustworthy:
        return None
    return (
        f"{outcome.untrustworthy} of {outcome.finished} requests ran while the client was"
        f" saturated (event-loop lag up to {outcome.clock.get('max_loop_lag_ms', 0):.1f} ms,"
        f" CPU up to {outcome.clock.get('max_client_cpu', 0):.0%}); their latencies are"
        " overstated. Lower concurrency or use more worker processes. Rows: clock_ok = false."
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

    return tqdm(total=total, unit="req", desc="requests", dynamic_ncols=True)
