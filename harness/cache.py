"""An optional response cache, so re-running a quality suite never re-buys an answer.

Keyed on everything that determines a response (model, endpoint, parameters,
messages, max_tokens); only successful responses are stored, one JSON file
each, written atomically. A row served from the cache says so
(``from_cache``), keeps the answer, its tokens and its original cost, and has
no timings: nothing was measured.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from harness.providers.trace import Endpoint
from harness.secrets import redact
from harness.suites.base import RequestSpec

# What a cached row carries; timings are left out on purpose.
CACHED_FIELDS = (
    "status",
    "response_text",
    "finish_reason",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "output_tokens_client",
    "text_chunks",
    "cost_usd",
    "price_source",
    "price_input_per_mtok",
    "price_output_per_mtok",
    "input_chars",
    "output_chars",
    "transport",
)
TIMINGS = (
    "first_chunk_s",
    "first_reasoning_s",
    "ttft_s",
    "e2e_s",
    "itl_s",
    "tpot_s",
    "output_tps",
)


def cache_key(endpoint: Endpoint, request: RequestSpec) -> str:
    """sha256 of what determines the answer (never the API key)."""
    identity = {
        "model": endpoint.model,
        "api_base": endpoint.api_base,
        # Header secrets redacted: a rotated key is the same request.
        "params": redact(endpoint.params),
        "messages": request.messages,
        "max_tokens": request.max_tokens,
        "extra": request.extra,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


class ResponseCache:
    """A directory of ``<sha256>.json`` responses."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.stores = 0

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, endpoint: Endpoint, request: RequestSpec) -> dict[str, Any] | None:
        path = self._path(cache_key(endpoint, request))
        try:
            cached: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        self.hits += 1
        row: dict[str, Any] = {
            "suite": request.suite,
            "suite_kind": request.suite_kind,
            "case_id": request.case_id,
            "repeat": request.repeat,
            "load_level": request.load_level,
            "warmup": request.warmup,
            "provider": endpoint.provider,
            "model": endpoint.model,
            "simulated": endpoint.simulated,
            "max_tokens": request.max_tokens,
            "error_type": None,
            "error_message": None,
            "http_status": None,
            "chunk_offsets_s": [],
            "from_cache": True,
            **dict.fromkeys(TIMINGS),
        }
        row.update({k: cached.get(k) for k in CACHED_FIELDS})
        return row

    def put(self, endpoint: Endpoint, request: RequestSpec, row: dict[str, Any]) -> None:
        if row.get("status") != "ok" or row.get("from_cache"):
            return
        path = self._path(cache_key(endpoint, request))
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({k: row.get(k) for k in CACHED_FIELDS}, default=str))
        os.replace(tmp, path)
        self.stores += 1
