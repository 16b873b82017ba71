"""The child processes a run starts (the simulator, local model servers), their health
checks, and the scrubbing of their logs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from harness.config.spec import RunSpec
from harness.errors import ProviderSetupError
from harness.run.scheduler import Health, RunOutcome
from harness.secrets import scrub_file
from harness.sim import SimProcess, SimProfile

if TYPE_CHECKING:
    from harness.providers.local_server import LocalModelServer
from harness.run.plan import judges


@contextmanager
def local_servers(spec: RunSpec, run_dir: Path) -> Iterator[dict[str, str]]:
    """Start a llama-cpp-python server per ``local`` provider; yields name → api_base."""
    with local_server_processes(spec, run_dir) as (servers, _):
        yield {name: server.api_base for name, server in servers.items()}


@contextmanager
def local_server_processes(
    spec: RunSpec, run_dir: Path
) -> Iterator[tuple[dict[str, LocalModelServer], dict[str, str]]]:
    """Start a llama-cpp-python server per ``local`` provider.

    Yields the running servers by provider name, and the ``optional`` providers whose
    server did not start, with the reason (a non-optional one raises).
    """
    from harness.providers.local_server import LocalModelServer, find_gguf

    with ExitStack() as stack:
        servers: dict[str, LocalModelServer] = {}
        failed: dict[str, str] = {}
        for p in spec.providers:
            if p.local is None:
                continue
            local = p.local
            path = (
                Path(local.gguf)
                if local.gguf
                else find_gguf(local.package or "", python=local.python)
            )
            server = LocalModelServer(
                path,
                alias=p.name,
                log_path=run_dir / f"_local-{p.name}.log",
                n_ctx=local.n_ctx,
                n_threads=local.n_threads,
                python=local.python or sys.executable,
                startup_timeout_s=local.startup_timeout_s,
                chat_format=local.chat_format,
            )
            try:
                stack.enter_context(server)
            except ProviderSetupError as exc:
                if not p.optional:
                    raise
                failed[p.name] = str(exc)
                continue
            servers[p.name] = server
        yield servers, failed


@contextmanager
def scrubbed_logs(run_dir: Path, known: list[str | None]) -> Iterator[None]:
    """On exit, remove ``known`` secrets and key-shaped strings from the run's ``_*.log`` files.

    The simulator and local servers log what they are told; a server that logs a
    request's headers would otherwise keep a key in the run directory.
    """
    try:
        yield
    finally:
        for log in run_dir.glob("_*.log"):
            scrub_file(log, *known)


@contextmanager
def simulators(spec: RunSpec, log_path: Path | None = None) -> Iterator[SimProcess | None]:
    """Start one simulator process for every simulated provider and judge."""
    profiles: dict[str, SimProfile] = {
        p.name: p.simulate for p in spec.providers if p.simulate is not None
    }
    profiles |= {f"judge-{s}": j.simulate for s, j in judges(spec).items() if j.simulate}
    if not profiles:
        yield None
        return
    with SimProcess(profiles, log_path=log_path) as sim:
        yield sim


def _health(
    spec: RunSpec,
    sim: SimProcess | None,
    servers: dict[str, LocalModelServer],
    *,
    picklable: bool,
) -> dict[str, Health]:
    """Provider → check of the child process that serves it (None while it runs)."""
    health: dict[str, Health] = {
        name: server.watch() if picklable else server.exit_failure
        for name, server in servers.items()
    }
    if sim is not None and not picklable:
        health |= {p.name: sim.exit_failure for p in spec.providers if p.simulated}
    return health


def _gone(
    outcome: RunOutcome | None, not_started: dict[str, str], health: dict[str, Health]
) -> dict[str, str]:
    """Every provider that is gone by the end, and why; a death the run did not see too."""
    gone = {**not_started, **(outcome.unavailable if outcome is not None else {})}
    for name, check in health.items():
        if name not in gone and (reason := check()) is not None:
            gone[name] = reason
    return gone
