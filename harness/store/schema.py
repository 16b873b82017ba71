"""The row schema: every column a stored request has, and the checks a row passes before
it is stored.

A column's meaning is in the README (Results) and DESIGN.md; readers conform older parts
to this schema.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

# Set by tests/conftest.py: a row key the schema does not know raises instead
# of being dropped with a warning.
STRICT_ROWS_ENV = "HARNESS_STRICT_ROWS"


log = logging.getLogger(__name__)


SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("request_index", pa.int64()),
        ("suite", pa.string()),
        ("suite_kind", pa.string()),
        ("case_id", pa.string()),
        ("repeat", pa.int64()),
        ("load_level", pa.string()),
        ("warmup", pa.bool_()),
        ("provider", pa.string()),
        ("model", pa.string()),
        ("simulated", pa.bool_()),
        ("transport", pa.string()),
        # the clock that timed the row: "socket" (t0 at the request's write, chunks
        # at their bytes' arrival) or "call" (litellm's fallback: t0 at the call,
        # chunks when parsed); see harness/providers/socket_stamps.py
        ("clock", pa.string()),
        ("from_cache", pa.bool_()),
        ("max_tokens", pa.int64()),
        ("status", pa.string()),
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("http_status", pa.int64()),
        ("attempts", pa.int64()),
        ("retry_wait_s", pa.float64()),
        ("retry_after_s", pa.float64()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        # The clock's start on this host's monotonic clock (time.perf_counter):
        # lines a row up with stamps taken on the same host (the simulator's
        # /sim/timings, a local server's log); meaningless on another host.
        ("t0_perf_s", pa.float64()),
        ("first_chunk_s", pa.float64()),
        ("first_reasoning_s", pa.float64()),
        ("ttft_s", pa.float64()),
        ("e2e_s", pa.float64()),
        ("itl_s", pa.float64()),
        ("tpot_s", pa.float64()),
        ("output_tps", pa.float64()),
        ("chunk_offsets_s", pa.list_(pa.float64())),
        ("text_chunks", pa.int64()),
        ("output_tokens_client", pa.int64()),
        ("tokens_mismatch", pa.bool_()),
        # reasoning and visible tokens (see trace.speed_metrics)
        ("reasoning_s", pa.float64()),
        ("reasoning_chunks", pa.int64()),
        ("reasoning_tokens_client", pa.int64()),
        ("visible_tokens", pa.int64()),
        ("chunk_tokens", pa.list_(pa.int64())),
        ("tokens_per_chunk", pa.float64()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cached_input_tokens", pa.int64()),
        ("reasoning_tokens", pa.int64()),
        ("cache_write_tokens", pa.int64()),
        ("cost_usd", pa.float64()),
        ("price_source", pa.string()),
        ("price_input_per_mtok", pa.float64()),
        ("price_output_per_mtok", pa.float64()),
        ("input_chars", pa.int64()),
        ("output_chars", pa.int64()),
        ("schedule_lag_s", pa.float64()),
        ("send_delay_s", pa.float64()),
        # open-loop queueing (offsets from the phase start; see harness/run/scheduler.py)
        ("scheduled_s", pa.float64()),
        ("sent_s", pa.float64()),
        ("queue_wait_s", pa.float64()),
        ("loop_lag_ms", pa.float64()),
        ("client_cpu", pa.float64()),
        ("clock_ok", pa.bool_()),
        ("worker", pa.int64()),
        # Where the row was sent from (harness/run/executors): inline, processes or ray;
        # the host (under ray, host/node id); the actor or worker process; whether that
        # node's clock offset to the driver was measured within the tolerance.
        ("executor", pa.string()),
        ("node", pa.string()),
        ("actor", pa.int64()),
        ("node_clock_ok", pa.bool_()),
        ("finish_reason", pa.string()),
        ("response_text", pa.string()),
        # rag_qa scores (null for other suite kinds)
        ("references", pa.list_(pa.string())),
        ("answerable", pa.bool_()),
        ("exact_match", pa.float64()),
        ("f1", pa.float64()),
        ("exact_match_abstain", pa.float64()),
        ("f1_abstain", pa.float64()),
        ("contains", pa.float64()),
        ("regex_match", pa.float64()),
        ("abstained", pa.bool_()),
        ("judge_model", pa.string()),
        ("judge_correctness", pa.float64()),
        ("judge_faithful", pa.bool_()),
        ("judge_rationale", pa.string()),
        ("judge_error", pa.string()),
        ("judge_input_tokens", pa.int64()),
        ("judge_output_tokens", pa.int64()),
        ("judge_cost_usd", pa.float64()),
        ("judge_from_cache", pa.bool_()),  # the verdict was replayed with a cached answer
        # chat (multi-turn) and prompt_cache kinds (null for other kinds; harness/suites/)
        ("conversation", pa.string()),
        ("turn", pa.int64()),
        ("chat_history", pa.list_(pa.string())),  # the assistant turns this turn was sent with
        ("turn_score", pa.float64()),
        ("cache_role", pa.string()),  # cold / warm
        ("cache_prefix", pa.string()),
        ("cache_salt", pa.string()),
        ("cache_expected_tokens", pa.int64()),
        ("cache_hit", pa.bool_()),
        ("cache_mismatch", pa.bool_()),
        # tool calls as streamed (providers/tools.py) and tool_call scores (suites/tool_call.py)
        ("tool_calls", pa.string()),  # JSON: [{"id", "name", "arguments" (raw text)}]
        ("ttft_tool_s", pa.float64()),  # request sent -> first tool-call token
        ("tool_valid", pa.float64()),
        ("tool_exact", pa.float64()),
        ("tool_arg_precision", pa.float64()),
        ("tool_arg_recall", pa.float64()),
        ("tool_error", pa.string()),  # why a call is not valid or not exact
        # structured scores (suites/structured.py)
        ("structured_mode", pa.string()),  # response_format, instruction or free_form
        ("json_valid", pa.float64()),
        ("schema_valid", pa.float64()),
        ("field_accuracy", pa.float64()),
        ("structured_error", pa.string()),
    ]
)


COLUMNS = frozenset(SCHEMA.names)


_warned_keys: set[str] = set()


def known_columns(row: Mapping[str, Any]) -> Mapping[str, Any]:
    """The row, checked against the schema before it is stored.

    A key the schema lacks would never reach Parquet: under tests
    (``HARNESS_STRICT_ROWS=1``) that raises; otherwise the key is dropped and
    named once in a warning, never silently.
    """
    unknown = row.keys() - COLUMNS
    if not unknown:
        return row
    if os.environ.get(STRICT_ROWS_ENV) == "1":
        raise ValueError(
            f"row keys not in the Parquet schema (harness.store.schema.SCHEMA): {sorted(unknown)};"
            " add a column, or remove the key before the row reaches the sink"
        )
    if unknown - _warned_keys:
        _warned_keys.update(unknown)
        log.warning("row keys not in the Parquet schema are not stored: %s", sorted(unknown))
    return {k: v for k, v in row.items() if k in COLUMNS}


def conform(table: pa.Table) -> pa.Table:
    columns = []
    for field in SCHEMA:
        if field.name in table.column_names:
            columns.append(table.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=SCHEMA)
