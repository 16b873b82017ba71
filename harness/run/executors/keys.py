"""API keys on a cluster: what travels is the name of a variable, never its value.

The driver resolves every key from its own environment (a run fails before it
sends anything when one is unset). An executor whose senders run elsewhere
(:mod:`~harness.run.executors.ray`) sends them endpoints without their secrets
and a :class:`KeySource` per endpoint; each sender reads the values from its own
environment (:func:`with_keys`), so no key is in a task's arguments, in Ray's
runtime env or in its object store.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from harness.providers.trace import Endpoint
from harness.secrets import env_refs, expand_refs

MISSING_KEY = "api_key_env"


@dataclass(frozen=True)
class KeySource:
    """Where an endpoint's secrets come from, by name: its key's variable, and its params
    with their ``${VAR}`` references (header secrets) unresolved."""

    api_key_env: str | None = None
    params: dict[str, Any] | None = None

    def variables(self) -> list[str]:
        """Every variable a sender needs set."""
        named = [self.api_key_env] if self.api_key_env else []
        return named + list(env_refs(self.params or {}))


def key_source(
    endpoint: Endpoint, api_key_env: str | None, params: Mapping[str, Any]
) -> KeySource | None:
    """The source of ``endpoint``'s secrets, or None when it has none from the environment
    (a simulator's or a local server's placeholder key travels as is)."""
    from_env = (
        api_key_env is not None
        and endpoint.api_key is not None
        and endpoint.api_key == os.environ.get(api_key_env)
    )
    refs = any(True for _ in env_refs(dict(params)))
    if not from_env and not refs:
        return None
    return KeySource(api_key_env if from_env else None, dict(params) if refs else None)


def without_keys(endpoint: Endpoint, source: KeySource | None) -> Endpoint:
    """``endpoint`` as it may travel: no key, no resolved header, no secret to scrub."""
    if source is None:
        return endpoint
    return replace(
        endpoint,
        api_key=None if source.api_key_env else endpoint.api_key,
        params=dict(source.params) if source.params is not None else endpoint.params,
        secrets=(),
    )


def with_keys(endpoint: Endpoint, source: KeySource | None, env: Mapping[str, str]) -> Endpoint:
    """``endpoint`` with its secrets read from ``env`` (the sender's environment).

    Raises :class:`KeyError` naming the first variable ``env`` lacks.
    """
    if source is None:
        return endpoint
    missing = [v for v in source.variables() if not env.get(v)]
    if missing:
        raise KeyError(missing[0])
    key = env[source.api_key_env] if source.api_key_env else endpoint.api_key
    params, secrets = endpoint.params, list(endpoint.secrets)
    if source.params is not None:
        params, secrets = expand_refs(source.params, env)
    return replace(endpoint, api_key=key, params=params, secrets=tuple(secrets))
