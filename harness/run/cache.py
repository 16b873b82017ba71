"""An optional response cache, so re-running a quality suite never re-buys an answer.

A cache must never replace a measurement. So:

- Only quality-scored requests outside any load phase use it (:func:`cacheable`):
  ``rag_qa`` suites without ``load:``. A latency suite, any phase with a load
  pattern, and warm-ups are always sent: their rows are measurements of the
  provider now. The ``cost`` suite is always sent too: what it measures is the
  provider's token usage (its tokenizer, its prompt caching, how long it
  answers) at today's price, and a replayed row would report last month's usage
  as if it had been observed again.
- The key is everything that determines a response (model, endpoint,
  parameters, messages, max_tokens, extra body) *and the repeat*: repeats exist
  to sample a provider's variation, and serving one stored answer five times
  would pretend to five observations.
- An entry remembers the run that wrote it, and a run never serves its own
  entries back (a resumed run is the same run): identical requests within a run
  are each sent.
- Only successful responses are stored, one JSON file each, written
  atomically. A row served from the cache says so (``from_cache``), keeps the
  answer, its tokens and its original cost, and has no timings: nothing was
  measured. Reports leave cached rows out of every latency statistic.
- The judge's verdict is stored with the entry under its own key: the judge
  call itself (model, endpoint, parameters and the exact grading messages,
  which hold the answer). A cached row keeps the verdict only when this run's
  judge would make the identical call; otherwise it is judged again (a real,
  paid call; ``judge_from_cache`` false) and the new verdict replaces the old.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.providers.trace import Endpoint
from harness.request import RequestSpec, request_identity
from harness.secrets import redact

# Suite kinds whose rows are scored for quality and may be replayed. Never
# "latency" (timings are its point) nor "cost" (usage at today's price is its point).
CACHEABLE_KINDS = frozenset({"rag_qa"})

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
    "reasoning_chunks",
    "reasoning_tokens_client",
    "visible_tokens",
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
    "reasoning_s",
    "ttft_s",
    "e2e_s",
    "itl_s",
    "tpot_s",
    "output_tps",
)
# A verdict, stored beside the answer it grades.
JUDGE_FIELDS = (
    "judge_model",
    "judge_correctness",
    "judge_faithful",
    "judge_rationale",
    "judge_input_tokens",
    "judge_output_tokens",
    "judge_cost_usd",
)


def cacheable(request: RequestSpec) -> bool:
    """May this request be served from (and stored in) the cache?

    Only quality-scored kinds, outside any load phase, never a warm-up.
    """
    return (
        request.suite_kind in CACHEABLE_KINDS and request.load_level is None and not request.warmup
    )


def _sha256(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def cache_key(endpoint: Endpoint, request: RequestSpec) -> str:
    """sha256 of what determines the answer, and the repeat (never the API key)."""
    return _sha256(
        {
            "model": endpoint.model,
            "api_base": endpoint.api_base,
            # Header secrets redacted: a rotated key is the same request.
            "params": redact(endpoint.params),
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "extra": request.extra,
            "repeat": request.repeat,
        }
    )


def judge_key(call: dict[str, Any]) -> str:
    """sha256 of one judge call's arguments (model, endpoint, params, messages, schema)."""
    return _sha256(redact({k: v for k, v in call.items() if k != "api_key"}))


@dataclass
class CacheHit:
    """A stored answer as a row (no timings), and its stored verdict if any."""

    row: dict[str, Any]
    judge_key: str | None = None
    judge: dict[str, Any] | None = None


class ResponseCache:
    """A directory of ``<sha256>.json`` entries; ``run_id`` is the run using it.

    Picklable (a root, a run id and the run's results root), so worker processes share
    one directory and one identity. ``results_root`` tells apart two runs of the same id
    (a timestamp to the second and the run's name) written into different results roots:
    each must be served the other's answers; a resumed run is still the same run.
    """

    def __init__(self, root: Path, run_id: str, results_root: Path | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.run_id = run_id
        self.writer = run_id if results_root is None else f"{Path(results_root).resolve()}/{run_id}"
        self.hits = 0
        self.stores = 0

    def _own(self, entry: dict[str, Any]) -> bool:
        """Whether this run (this attempt of it) stored the entry; entries written before
        writer tokens existed are judged by their run id."""
        writer = entry.get("writer")
        return writer == self.writer if writer is not None else entry.get("run_id") == self.run_id

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            entry: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry.get("row"), dict) else None

    def _write(self, path: Path, entry: dict[str, Any]) -> None:
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(entry)}.tmp")
        tmp.write_text(json.dumps(entry, default=str), encoding="utf-8")
        os.replace(tmp, path)

    def get(self, endpoint: Endpoint, request: RequestSpec) -> CacheHit | None:
        """The stored answer, unless this run wrote it (or the request may not be cached)."""
        if not cacheable(request):
            return None
        entry = self._read(self._path(cache_key(endpoint, request)))
        if entry is None or self._own(entry):
            return None
        self.hits += 1
        row: dict[str, Any] = {
            **request_identity(request),
            "provider": endpoint.provider,
            "model": endpoint.model,
            "simulated": endpoint.simulated,
            "error_type": None,
            "error_message": None,
            "http_status": None,
            "chunk_offsets_s": [],
            "from_cache": True,
            **dict.fromkeys(TIMINGS),
        }
        row.update({k: entry["row"].get(k) for k in CACHED_FIELDS})
        judge = entry.get("judge") or {}
        return CacheHit(row, judge.get("key"), judge.get("columns"))

    def put(
        self,
        endpoint: Endpoint,
        request: RequestSpec,
        row: dict[str, Any],
        judge: tuple[str, dict[str, Any]] | None = None,
    ) -> None:
        """Store a successful, measured answer (and its verdict, keyed by the judge call)."""
        if not cacheable(request) or row.get("status") != "ok" or row.get("from_cache"):
            return
        entry: dict[str, Any] = {
            "run_id": self.run_id,
            "writer": self.writer,
            "row": {k: row.get(k) for k in CACHED_FIELDS},
            "judge": self._verdict(judge),
        }
        self._write(self._path(cache_key(endpoint, request)), entry)
        self.stores += 1

    def put_judge(
        self, endpoint: Endpoint, request: RequestSpec, judge: tuple[str, dict[str, Any]]
    ) -> None:
        """Replace the verdict of a stored answer (it was judged again); the answer's
        entry keeps the run that bought it."""
        path = self._path(cache_key(endpoint, request))
        entry = self._read(path)
        verdict = self._verdict(judge)
        if entry is not None and verdict is not None:
            self._write(path, {**entry, "judge": verdict})

    @staticmethod
    def _verdict(judge: tuple[str, dict[str, Any]] | None) -> dict[str, Any] | None:
        # A failed judge call is not a verdict: the next run asks again.
        if judge is None or judge[1].get("judge_error") is not None:
            return None
        key, columns = judge
        return {"key": key, "columns": {k: columns.get(k) for k in JUDGE_FIELDS}}
