"""``harness run``: the one entry point that turns a validated config into a stored run.

Order matters: everything that can fail on bad input (missing keys, bad run
id, simulators that do not start) fails before the first request is sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.metadata
import itertools
import os
import platform
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import __version__
from harness.config.spec import ProviderConfig, RunSpec
from harness.cost import price_table
from harness.cost.pricing import resolve_price
from harness.errors import ConfigError, ProviderSetupError, StoreError
from harness.providers.trace import Endpoint
from harness.request import RequestSpec
from harness.run.budget import Budget, PlanLine, dry_run, input_tokens, recovered_spend
from harness.run.cache import CacheHit, ResponseCache, judge_key
from harness.run.clock import MAX_LAG_MS
from harness.run.limits import RateLimiter, RetryPolicy
from harness.run.scheduler import UNAVAILABLE, Health, Phase, RunOutcome, run_phases
from harness.secrets import env_refs, expand_refs, redact, scrub, scrub_file
from harness.sim import SimProcess, SimProfile
from harness.store.files import read_manifest, validate_run_id, write_manifest
from harness.store.journal import JournalWriter
from harness.store.resume import ResumeState, prepare_resume
from harness.suites import SUITE_KINDS
from harness.suites.rag_qa import JudgeConfig, RagQaSuite

if TYPE_CHECKING:
    from harness.providers.local_server import LocalModelServer

# litellm model prefixes that speak the OpenAI chat-completions protocol at an
# api_base; ``transport: auto`` sends these through the direct client.
DIRECT_PREFIXES = ("openai", "hosted_vllm", "openai_like", "llamafile", "lm_studio")


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


def judges(spec: RunSpec) -> dict[str, JudgeConfig]:
    """Suite name → its judge, for suites that have one."""
    return {
        s.name: s.judge for s in spec.suites if isinstance(s, RagQaSuite) and s.judge is not None
    }


def resolve_keys(spec: RunSpec) -> dict[str, str | None]:
    """Read each provider's (and judge's) API key from its environment variable.

    Fails before anything is sent when a named variable is not set.
    """
    keys: dict[str, str | None] = {}
    for name, env in _key_envs(spec):
        keys[name] = os.environ.get(env) if env is not None else None
    missing = unset_key_envs(spec)
    if missing:
        raise ConfigError(
            "environment variables not set (export them, or remove the provider):\n"
            + "\n".join(missing)
        )
    return keys


def _key_envs(spec: RunSpec) -> list[tuple[str, str | None]]:
    """(provider or ``judge:<suite>``, its API-key variable or None), in config order."""
    named = [(p.name, p.api_key_env) for p in spec.providers]
    return named + [(f"judge:{s}", j.api_key_env) for s, j in judges(spec).items()]


def unset_key_envs(spec: RunSpec) -> list[str]:
    """Every API-key variable (``api_key_env``, ``${VAR}`` in params) that is not set, each
    as ``<config>: <key>: <VAR>``; a run fails on them, a dry run lists them."""
    missing = []
    named = [(f"providers[{i}]", p.api_key_env) for i, p in enumerate(spec.providers)]
    named += [(f"suite {s}: judge", j.api_key_env) for s, j in judges(spec).items()]
    for where, env in named:
        if env is not None and not os.environ.get(env):
            missing.append(f"{spec.path}: {where}.api_key_env: {env}")
    # Header secrets (${VAR} under a secret-named key in params) are resolved when
    # the endpoints are built; a missing one fails the run before anything is sent.
    referenced = [(f"providers[{i}].params", p.params) for i, p in enumerate(spec.providers)]
    referenced += [(f"suite {s}: judge.params", j.params) for s, j in judges(spec).items()]
    for where, params in referenced:
        unset = [v for v in env_refs(params) if v not in os.environ]
        missing += [f"{spec.path}: {where}: ${{{v}}}" for v in unset]
    return missing


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


def choose_transport(provider: ProviderConfig) -> str:
    """``auto`` picks the direct client for OpenAI-compatible endpoints, else litellm."""
    if provider.transport != "auto":
        return provider.transport
    assert provider.model is not None
    prefix = provider.model.split("/", 1)[0]
    speaks_openai = prefix in DIRECT_PREFIXES and "/" in provider.model
    served_here = provider.simulated or provider.local is not None
    if prefix == "anthropic" and "/" in provider.model:
        from harness.providers.anthropic import supports

        # Params the native client does not translate (tools, ...) stay with litellm.
        return "anthropic" if supports(provider.params) else "litellm"
    return "direct" if speaks_openai and (provider.api_base or served_here) else "litellm"


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


def skip_unavailable(spec: RunSpec) -> tuple[RunSpec, dict[str, str]]:
    """Drop ``optional`` local providers whose extra is not installed, saying why.

    A non-optional one that is unavailable fails the run before anything is sent.
    """
    from harness.providers.local_server import INSTALL_HINT, local_extra_available

    kept, skipped = [], {}
    for p in spec.providers:
        if p.local is not None and p.local.gguf is None:
            assert p.local.package is not None
            if not local_extra_available(python=p.local.python, package=p.local.package):
                reason = (
                    f"{p.name} skipped: llama-cpp-python or {p.local.package} is not installed;"
                    f" to compare this real model locally: {INSTALL_HINT}"
                )
                if not p.optional:
                    raise ProviderSetupError(reason.replace("skipped", "unavailable"))
                skipped[p.name] = reason
                continue
        kept.append(p)
    if not kept:
        raise ConfigError(f"{spec.path}: no provider is available to run")
    return dataclasses.replace(spec, providers=kept), skipped


NOT_STARTED = "http://127.0.0.1:9/v1"
"""api_base of an optional local provider whose server did not start: never sent to."""


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
    from harness.errors import ProviderSetupError
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


def build_endpoints(
    spec: RunSpec,
    keys: dict[str, str | None],
    sim: SimProcess | None,
    local_bases: dict[str, str] | None = None,
) -> tuple[dict[str, Endpoint], dict[str, Endpoint]]:
    """Endpoints of the providers (by name) and of the judges (by suite name)."""
    table = price_table.model_cost()
    providers = {}
    for p in spec.providers:
        assert p.model is not None
        key, api_base = keys[p.name], p.api_base
        if p.simulated:
            assert sim is not None
            api_base, key = sim.api_base, key or "sim-no-key"
        elif p.local is not None:
            api_base, key = (local_bases or {})[p.name], "local-no-key"
        elif key is None and api_base is not None:
            # OpenAI-compatible servers often need no key, but clients want one.
            key = "no-key"
        params, header_secrets = expand_refs(p.params, os.environ)
        providers[p.name] = Endpoint(
            provider=p.name,
            model=p.model,
            simulated=p.simulated,
            api_base=api_base,
            api_key=key,
            params=params,
            secrets=tuple(header_secrets),
            timeout_s=p.timeout_s or spec.run.timeout_s,
            first_token_timeout_s=p.first_token_timeout_s,
            transport=choose_transport(p),
            price=resolve_price(p.model, p.pricing, table),
        )
    judge_endpoints = {}
    for suite, j in judges(spec).items():
        model, api_base, key = j.model, j.api_base, keys[f"judge:{suite}"]
        if j.simulate is not None:
            assert sim is not None
            model, api_base, key = f"openai/judge-{suite}", sim.api_base, "sim-no-key"
        assert model is not None
        params, header_secrets = expand_refs(j.params, os.environ)
        judge_endpoints[suite] = Endpoint(
            provider=f"judge:{suite}",
            model=model,
            simulated=j.simulate is not None,
            api_base=api_base,
            api_key=key or ("no-key" if api_base else None),
            params=params,
            secrets=tuple(header_secrets),
            timeout_s=j.timeout_s,
            price=resolve_price(model, None, table),
        )
    return providers, judge_endpoints


class Sender:
    """Sends one request through its provider's transport, then scores and judges it."""

    def __init__(
        self,
        endpoints: dict[str, Endpoint],
        judge_endpoints: dict[str, Endpoint],
        cache: ResponseCache | None = None,
    ):
        self.endpoints = endpoints
        self.judge_endpoints = judge_endpoints
        self.cache = cache
        needs_litellm = judge_endpoints or any(e.transport == "litellm" for e in endpoints.values())
        self.litellm: Any = None
        if needs_litellm:
            from harness.providers.transport import import_litellm

            self.litellm = import_litellm()
        self.direct: Any = None
        self.anthropic: Any = None

    async def __call__(self, request: RequestSpec) -> dict[str, Any]:
        endpoint = self.endpoints[request.provider]
        # The cache serves only quality-scored requests outside load phases
        # (harness.run.cache.cacheable), and never an answer this run stored itself.
        hit = self.cache.get(endpoint, request) if self.cache is not None else None
        if hit is not None:
            row, verdict = await self._judged(self._scored(hit.row, request), request, hit)
            if verdict is not None and self.cache is not None:
                self.cache.put_judge(endpoint, request, verdict)
            return row
        if endpoint.transport == "direct":
            if self.direct is None:
                from harness.providers.direct import DirectClient

                self.direct = DirectClient()
            row = await self.direct.send(endpoint, request)
        elif endpoint.transport == "anthropic":
            if self.anthropic is None:
                from harness.providers.anthropic import AnthropicClient

                self.anthropic = AnthropicClient()
            row = await self.anthropic.send(endpoint, request)
        else:
            from harness.providers.transport import send

            row = await send(self.litellm, endpoint, request)
        row, verdict = await self._judged(self._scored(row, request), request)
        if self.cache is not None:
            self.cache.put(endpoint, request, row, verdict)
        return row

    def _scored(self, row: dict[str, Any], request: RequestSpec) -> dict[str, Any]:
        kind = SUITE_KINDS[request.suite_kind]
        if kind.score is not None:
            row.update(kind.score(row, request))
        return row

    async def _judged(
        self, row: dict[str, Any], request: RequestSpec, hit: CacheHit | None = None
    ) -> tuple[dict[str, Any], tuple[str, dict[str, Any]] | None]:
        """The row with its verdict, and (key, verdict) when the judge was called.

        A cached answer keeps its stored verdict only if this run's judge would
        make the identical call (same model, endpoint, params, grading messages);
        otherwise it is judged again, like any answer.
        """
        judge_endpoint = self.judge_endpoints.get(request.suite)
        if judge_endpoint is None or request.warmup or row["status"] != "ok":
            return row, None
        from harness.suites.judge import judge, judge_call

        call = judge_call(judge_endpoint, row, request)
        key = judge_key(call)
        if hit is not None and hit.judge is not None and hit.judge_key == key:
            row.update(hit.judge, judge_from_cache=True)
            return row, None
        verdict = await judge(self.litellm, judge_endpoint, row, request, call)
        row.update(verdict, judge_from_cache=False)
        return row, (key, verdict)

    async def close(self) -> None:
        if self.direct is not None:
            await self.direct.close()
        if self.anthropic is not None:
            await self.anthropic.close()


def remaining(plan: list[Phase], finished: set[int]) -> list[Phase]:
    """The plan without its finished requests, each keeping its original index."""
    out = []
    for phase in plan:
        pairs = [
            (phase.first_index + i, r)
            for i, r in enumerate(phase.requests)
            if phase.first_index + i not in finished
        ]
        if pairs:
            out.append(
                dataclasses.replace(
                    phase, requests=[r for _, r in pairs], indices=[i for i, _ in pairs]
                )
            )
    return out


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
        health = _health(spec, sim, servers, picklable=spec.run.workers > 1)
        # The keys from the environment and the resolved header secrets (not the
        # placeholders such as "no-key" that the harness itself sends).
        known.extend(keys.values())
        for e in (*endpoints.values(), *judge_endpoints.values()):
            known.extend(e.secrets)
        # With worker processes, each builds its own sender (and imports litellm).
        cache = (
            ResponseCache(Path(spec.run.response_cache), run_id)
            if spec.run.response_cache
            else None
        )
        sender = Sender(endpoints, judge_endpoints, cache) if spec.run.workers == 1 else None
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

        retries = {
            p.name: RetryPolicy(max_retries=p.max_retries, base_s=p.retry_base_s)
            for p in spec.providers
        }
        rates = {p.name: (p.rpm, p.tpm) for p in spec.providers if p.rpm or p.tpm}
        provider_caps = {p.name: p.concurrency for p in spec.providers if p.concurrency}

        async def main() -> RunOutcome:
            assert sender is not None
            try:
                return await run_phases(
                    plan,
                    sender,
                    sink,
                    concurrency=spec.run.concurrency,
                    provider_concurrency=provider_caps,
                    warmup_requests=spec.run.warmup_requests,
                    budget=budget,
                    retries=retries,
                    limiters={n: RateLimiter(rpm=r, tpm=t) for n, (r, t) in rates.items()},
                    token_estimate=lambda r: input_tokens(r) + r.max_tokens,
                    health=health,
                    unavailable=not_started,
                    notify=tell,
                )
            finally:
                await sender.close()

        def in_workers() -> RunOutcome:
            from harness.run.executors.processes import run_in_workers

            return run_in_workers(
                spec.run.workers,
                plan,
                sink,
                endpoints=endpoints,
                judge_endpoints=judge_endpoints,
                concurrency=spec.run.concurrency,
                provider_concurrency=provider_caps,
                warmup_requests=spec.run.warmup_requests,
                retries=retries,
                rates=rates,
                unavailable=not_started,
                health=health,
                cache=cache,
            )

        status = "interrupted"
        outcome = None
        try:
            outcome = asyncio.run(main()) if spec.run.workers == 1 else in_workers()
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
            if any(p.pattern != "concurrency" for p in plan):
                manifest["open_loop"] = open_loop_block(run_dir)
            write_manifest(run_dir, manifest)
    stopped = budget.stopped_reason if budget is not None else None
    return RunResult(run_id, run_dir, outcome, status, skipped, stopped, warnings, unavailable)


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


def plan_estimate(spec: RunSpec) -> tuple[list[PlanLine], dict[str, str]]:
    """``--dry-run``: what would be sent and what it could cost; sends nothing.

    Simulated and local providers need no server for this: their price comes
    from the config (``pricing``) or is unknown.
    """
    spec, skipped = skip_unavailable(spec)
    table = price_table.model_cost()
    prices = {p.name: resolve_price(p.model or "", p.pricing, table) for p in spec.providers}
    judge_prices = {
        s: resolve_price(j.model or f"openai/judge-{s}", None, table)
        for s, j in judges(spec).items()
    }
    return dry_run(build_plan(spec), prices, judge_prices), skipped


@dataclass(frozen=True)
class PlanCount:
    """What ``validate`` says a run of a config will send: the run's own plan."""

    requests: int
    """Measured requests (one stored row each) once unavailable optional providers are
    dropped; a time-bounded phase counts its list once (it may send more, or fewer)."""
    providers: int
    """Providers sent to."""
    time_bounded: bool
    warmups_per_provider: int
    workers: int
    skipped: dict[str, str]
    """Optional providers left out, and why."""
    level_warmups: int = 0
    """Of ``requests``, the per-level warm-ups (``load.warmup``): stored, not in the stats."""

    def describe(self) -> str:
        """``N requests planned`` and what the number leaves out."""
        text = f"{self.requests} requests planned"
        if self.level_warmups:
            text += f" ({self.level_warmups} of them load-level warm-ups, kept out of the stats)"
        if self.time_bounded:
            text += " (time-bounded phases counted once through; they send for their duration)"
        left_out = []
        if self.warmups_per_provider:
            per = " per worker process" if self.workers > 1 else ""
            s = "s" if self.warmups_per_provider > 1 else ""
            left_out.append(
                f"{self.warmups_per_provider} unrecorded warm-up request{s} per provider{per}"
            )
        if self.skipped:
            left_out.append(f"skipped optional providers: {', '.join(self.skipped)}")
        return text + (f"; not counted: {'; '.join(left_out)}" if left_out else "")


def plan_count(spec: RunSpec) -> PlanCount:
    """Count the requests :func:`execute` would send, from the same plan it builds
    (after :func:`skip_unavailable`); sends nothing, starts no server."""
    kept, skipped = skip_unavailable(spec)
    phases = build_plan(kept)
    return PlanCount(
        requests=sum(len(phase.requests) for phase in phases),
        providers=len(kept.providers),
        time_bounded=any(phase.duration_s is not None for phase in phases),
        warmups_per_provider=spec.run.warmup_requests,
        workers=spec.run.workers,
        skipped=skipped,
        level_warmups=sum(r.warmup for phase in phases for r in phase.requests),
    )


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
