"""From provider configs to endpoints: keys from the environment, the transport, the price."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from harness.config.spec import ProviderConfig, RunSpec
from harness.cost import price_table
from harness.cost.pricing import resolve_price
from harness.errors import ConfigError
from harness.providers.trace import Endpoint
from harness.run.executors.keys import KeySource, key_source
from harness.secrets import env_refs, expand_refs
from harness.sim import SimProcess

if TYPE_CHECKING:
    pass
from harness.run.plan import judges

# litellm model prefixes that speak the OpenAI chat-completions protocol at an
# api_base; ``transport: auto`` sends these through the direct client.
DIRECT_PREFIXES = ("openai", "hosted_vllm", "openai_like", "llamafile", "lm_studio")


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
    if prefix == "gemini" and "/" in provider.model:
        from harness.providers import gemini

        return "gemini" if gemini.supports(provider.model, provider.params) else "litellm"
    return "direct" if speaks_openai and (provider.api_base or served_here) else "litellm"


NOT_STARTED = "http://127.0.0.1:9/v1"
"""api_base of an optional local provider whose server did not start: never sent to."""


def key_sources(
    spec: RunSpec, endpoints: dict[str, Endpoint], judge_endpoints: dict[str, Endpoint]
) -> dict[str, KeySource]:
    """Endpoint name → the variables its secrets come from (for senders on other nodes)."""
    named = [(endpoints[p.name], p.api_key_env, p.params) for p in spec.providers]
    named += [
        (judge_endpoints[s], j.api_key_env, j.params)
        for s, j in judges(spec).items()
        if s in judge_endpoints
    ]
    sources = {e.provider: key_source(e, env, params) for e, env, params in named}
    return {name: source for name, source in sources.items() if source is not None}


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
