"""What counts as a secret, and how it is kept out of everything the harness writes.

One module decides, for every place that needs to know (the config loader, both
transports, the judge, the manifest, the run directory's logs, exports):

- :data:`KEY_PATTERNS` — the shapes of real credentials (OpenAI ``sk-…``, Anthropic
  ``sk-ant-…``, Google ``AIza…``, AWS ``AKIA…``/``ASIA…`` and a labelled secret access
  key, Hugging Face ``hf_…``, Groq, GitHub, xAI, Replicate, bearer tokens, JWTs,
  PEM private keys). :func:`find_secret` names the first one in a text.
- :func:`is_secret_name` — the key-name rule: a mapping key or header whose last word
  is ``key``, ``token``, ``secret``, ``password``, ``authorization``, ``cookie``, …
  (``x-api-key``, ``Authorization``, ``aws_session_token``) holds a secret;
  ``max_tokens`` or ``first_token_timeout_s`` do not, and ``*_env`` names a variable.
- :func:`scrub` — free text (an error body, a log) with the known secret values
  and everything key-shaped replaced by :data:`REDACTED`.
- :func:`redact` — the same, applied recursively to mappings, lists and strings;
  values under secret names are replaced unless they are ``${VAR}`` references.
- :func:`audit` — where a config breaks the rules (for ``harness validate``).
- :func:`expand_refs` — resolves the ``${VAR}`` references a config keeps for secret
  values (headers) at the last moment, returning the values to scrub.

Only the standard library is imported: the config loader and the direct transport
use this without litellm.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "ENV_REF",
    "KEY_PATTERNS",
    "REDACTED",
    "SCRUB_CANDIDATE",
    "audit",
    "env_refs",
    "expand_refs",
    "find_secret",
    "is_reference",
    "is_secret_name",
    "is_secret_variable",
    "redact",
    "redact_frame",
    "scrub",
    "scrub_file",
    "secret_path",
]

REDACTED = "***"
"""What a secret is replaced with."""

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
"""``${VAR}`` or ``${VAR:-default}`` in a config value."""

# A key is not part of a longer word: "task-…" or "risk-…" is not "sk-…".
_START = r"(?<![A-Za-z0-9_\-])"
_END = r"(?![A-Za-z0-9_\-])"

KEY_PATTERNS: dict[str, str] = {
    "Anthropic API key": r"sk-ant-[A-Za-z0-9_\-]{16,}",
    "OpenAI API key": r"sk-[A-Za-z0-9_\-]{16,}",
    "Google API key": r"AIza[0-9A-Za-z_\-]{30,}",
    "AWS access key id": r"(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA)[0-9A-Z]{16}" + _END,
    "Hugging Face token": r"hf_[A-Za-z0-9]{30,}",
    "Groq API key": r"gsk_[A-Za-z0-9]{20,}",
    "GitHub token": r"(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})",
    "xAI API key": r"xai-[A-Za-z0-9]{30,}",
    "Replicate token": r"r8_[A-Za-z0-9]{30,}",
    "JWT": r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
    "private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
}
"""Credential shapes by name, as regular expressions (matched case-sensitively)."""

_KEYS = re.compile("|".join(f"(?P<g{i}>{_START}{p})" for i, p in enumerate(KEY_PATTERNS.values())))
_NAMES = list(KEY_PATTERNS)
# These keep their label ("Bearer ", "aws_secret_access_key=") and lose the value.
_BEARER = re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9_\-.=~+/]{8,}")
_AWS_SECRET = re.compile(
    r"(?i)(\b(?:aws[-_]?)?secret[-_]?access[-_]?key[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9/+=]{40}"
    r"(?![A-Za-z0-9/+=])"
)
# In free text, "<secret name>: value" / "name=value" (an echoed header, a query
# string, a JSON field) loses the value whatever its shape. A scheme word
# (Bearer, Basic) stays, and so does a ${VAR} reference.
_LABELLED = re.compile(
    r"(?i)(\b[A-Za-z0-9_\-]*(?:key|token|secret|password|passwd|authorization|cookie)"
    r"[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token)\s+)?)(?!\$\{|(?:bearer|basic|token)\b)[^\s\"',;&}]{6,}"
)

_SECRET_WORDS = frozenset(
    {
        "key",
        "apikey",
        "token",
        "secret",
        "password",
        "passwd",
        "passphrase",
        "credential",
        "credentials",
        "authorization",
        "cookie",
    }
)
_SECRET_VARIABLE = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL", re.IGNORECASE)
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
# Known values shorter than this are not treated as secrets: replacing "x"
# everywhere would wreck the text and protect nothing.
_MIN_KNOWN = 6


SCRUB_CANDIDATE = "|".join(
    [
        *(pattern.removesuffix(_END) for pattern in KEY_PATTERNS.values()),
        r"(?i:bearer\s+[A-Za-z0-9_\-.=~+/]{8,})",
        r"(?i:secret[-_]?access[-_]?key)",
        r"(?i:(?:key|token|secret|password|passwd|authorization|cookie)[\"']?\s*[:=])",
    ]
)
"""A pattern that every text :func:`scrub` would change (without known secret values)
matches: the same shapes without their look-arounds, so a superset. It has no
look-around, so a vectorised engine (RE2, in Arrow: ``harness.store.dataset``) can check
a column of a million answers at once and hand only the matches to :func:`scrub`."""


def find_secret(text: str) -> str | None:
    """The name of the first credential shape in ``text`` (e.g. ``"OpenAI API key"``)."""
    match = _KEYS.search(text)
    if match is not None:
        return _NAMES[int(str(match.lastgroup)[1:])]
    if _BEARER.search(text):
        return "bearer token"
    if _AWS_SECRET.search(text):
        return "AWS secret access key"
    return None


def is_secret_name(name: object) -> bool:
    """True for a key or header name that holds a credential.

    The last word decides (words split at ``-``, ``_``, ``.``, spaces and camelCase;
    trailing numbers ignored): ``x-api-key``, ``Authorization``, ``X-Auth-Token``,
    ``aws_secret_access_key``, ``client_secret``, ``apiKey``, ``password``, ``cookie``.
    ``max_tokens``, ``token_budget`` and ``first_token_timeout_s`` do not hold one,
    and a name ending in ``env`` (``api_key_env``) names an environment variable.
    """
    words = [w.lower() for w in _WORD.findall(str(name))]
    while words and words[-1].isdigit():
        words.pop()
    if not words or words[-1] == "env":
        return False
    last = words[-1]
    return last in _SECRET_WORDS or last.endswith(("apikey", "token", "secret", "password"))


def is_secret_variable(name: str) -> bool:
    """True for an environment variable whose name says it holds a secret (``*KEY*``, …)."""
    return _SECRET_VARIABLE.search(name) is not None


def _known(secrets: Iterable[str | None]) -> list[str]:
    # Longest first, so that a value containing another is replaced whole.
    values = {s for s in secrets if isinstance(s, str) and len(s) >= _MIN_KNOWN}
    return sorted(values, key=len, reverse=True)


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with the given secret values and every key-shaped string replaced by ``***``.

    Also the value of ``<secret name>: value`` or ``name=value`` pairs (``x-api-key: …``,
    ``?api_key=…``). ``Bearer <token>`` keeps its scheme (``Bearer ***``), so an error
    stays readable.
    """
    for secret in _known(secrets):
        text = text.replace(secret, REDACTED)
    text = _BEARER.sub(r"\1" + REDACTED, text)
    text = _AWS_SECRET.sub(r"\1" + REDACTED, text)
    text = _LABELLED.sub(r"\1" + REDACTED, text)
    return _KEYS.sub(REDACTED, text)


def is_reference(value: str) -> bool:
    """True when ``value`` takes its secret from the environment (holds a ``${VAR}``)."""
    return ENV_REF.search(value) is not None


def redact(value: Any, *secrets: str | None) -> Any:
    """A copy of ``value`` (mappings, lists, strings, …) with every secret removed.

    Strings are scrubbed (see :func:`scrub`); under a secret-named key, a string that
    is not a ``${VAR}`` reference, or a number, becomes ``***`` whatever its shape.
    """
    known = _known(secrets)
    return _redact(value, known, secret_named=False)


def _redact(value: Any, known: list[str], *, secret_named: bool) -> Any:
    if isinstance(value, Mapping):
        return {k: _redact(v, known, secret_named=is_secret_name(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v, known, secret_named=secret_named) for v in value]
    if isinstance(value, str):
        if secret_named and not is_reference(value):
            return REDACTED
        return scrub(value, *known)
    if secret_named and isinstance(value, int | float) and not isinstance(value, bool):
        return REDACTED
    return value


KeyPath = tuple[str | int, ...]


def _last_name(key_path: KeyPath) -> str | None:
    return next((p for p in reversed(key_path) if isinstance(p, str)), None)


def secret_path(key_path: KeyPath) -> bool:
    """True when the value at ``key_path`` is a secret (its nearest key name is secret)."""
    name = _last_name(key_path)
    return name is not None and is_secret_name(name)


def audit(
    data: Any, at: KeyPath = (), refs_allowed: Callable[[KeyPath], bool] = lambda _: True
) -> Iterator[tuple[KeyPath, str]]:
    """Every ``(key path, problem)`` where ``data`` (a loaded config) breaks the rules.

    A key-shaped value anywhere is a literal secret; a value under a secret-named key
    must be a ``${VAR}`` reference, and only where ``refs_allowed(key_path)`` (where
    something resolves it). Problems never quote the value.
    """
    if isinstance(data, Mapping):
        for key, value in data.items():
            yield from audit(value, (*at, str(key)), refs_allowed)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from audit(value, (*at, i), refs_allowed)
    elif isinstance(data, str):
        kind = find_secret(data)
        if kind is not None:
            yield at, f"this looks like a literal {kind}"
        elif secret_path(at) and not is_reference(data):
            yield at, "a secret-named key needs its value from an environment variable"
        elif secret_path(at) and not refs_allowed(at):
            yield at, "a secret may be referenced (${VAR}) only inside params"
    elif isinstance(data, int | float) and not isinstance(data, bool) and secret_path(at):
        yield at, "a secret-named key needs its value from an environment variable"


def env_refs(data: Any) -> Iterator[str]:
    """Names of the variables referenced (``${VAR}`` without a default) inside ``data``."""
    if isinstance(data, Mapping):
        for value in data.values():
            yield from env_refs(value)
    elif isinstance(data, list | tuple):
        for value in data:
            yield from env_refs(value)
    elif isinstance(data, str):
        for match in ENV_REF.finditer(data):
            if match.group(2) is None:
                yield match.group(1)


def expand_refs(data: Any, env: Mapping[str, str]) -> tuple[Any, list[str]]:
    """``data`` with its ``${VAR}`` references resolved from ``env``, and the values used.

    The caller checks first (with :func:`env_refs`) that every variable is set; a
    missing one without a default raises :class:`KeyError`. The returned values
    (and the resolved strings they were part of) are what error messages must lose.
    """
    used: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env[name] if name in env or default is None else default
        used.append(value)
        return value

    def walk(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        if isinstance(value, str) and "${" in value:
            resolved = ENV_REF.sub(replace, value)
            if resolved != value:
                used.append(resolved)  # "Bearer <token>" as a whole, too
            return resolved
        return value

    return walk(data), used


def scrub_file(path: Path, *secrets: str | None) -> bool:
    """Rewrite a text file (a server log) without secrets; True if anything was removed."""
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return False
    cleaned = scrub(text, *secrets)
    if cleaned == text:
        return False
    path.write_text(cleaned, encoding="utf-8", errors="surrogateescape")
    return True


def redact_frame(frame: Any) -> Any:
    """A pandas DataFrame with its text cells scrubbed (a copy only if anything changed).

    A column with a secret name (``api_key``) loses every value. Duck-typed, so this
    module does not import pandas.
    """
    changed: dict[Any, Any] = {}
    for column in frame.columns:
        values = frame[column]
        if is_secret_name(column):
            changed[column] = values.map(lambda v: REDACTED if isinstance(v, str) else v)
        elif getattr(values.dtype, "kind", "") == "O" and any(  # object and str dtypes
            # Cells may be lists or arrays (chunk offsets): only strings are text.
            isinstance(v, str) and scrub(v) != v
            for v in values
        ):
            changed[column] = values.map(lambda v: scrub(v) if isinstance(v, str) else v)
    if not changed:
        return frame
    frame = frame.copy()
    for column, values in changed.items():
        frame[column] = values
    return frame
