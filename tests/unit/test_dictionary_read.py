"""Text columns read as the parts' dictionaries (``read_rows(dictionary=...)``), scrubbed
in the dictionary and decoded: the same values, row for row, as a plain read scrubbed row
by row, for parts, journal rows, old parts without the column, and secret-named columns."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.errors import StoreError
from harness.report.summary import read_frame
from harness.store.dataset import decode_text, read_rows, redact_text
from harness.store.journal import JournalWriter

KEY = "sk-proj-" + "Qw7Er9Ty2" * 3  # fake, key-shaped
TEXT = ["suite", "provider", "status", "error_type", "case_id", "model"]


def row(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "suite": "lat" if i % 3 else "rag",
        "provider": "a" if i % 2 else "b",
        "status": "ok" if i % 5 else "error",
        "error_type": None if i % 5 else "server_error",
        "case_id": f"case-{i % 4}",
        # a model name that echoes a key: scrubbed wherever it is read
        "model": f"m {KEY}" if i % 7 == 0 else "m",
        "request_index": i,
        "started_at": datetime(2026, 12, 1, 8, 0, i % 60, tzinfo=UTC),
        "ttft_s": 0.01 * i,
        **extra,
    }


def test_a_dictionary_read_decodes_to_the_plain_read(tmp_path: Path) -> None:
    root = tmp_path / "results"
    writer = JournalWriter(root / "r", "r", flush_rows=10, flush_s=3600, merge_min_parts=None)
    for i in range(30):
        writer.add(row(i))
    writer.close()
    # A second writer leaves one row in its journal (not closed): read beside the parts.
    open_writer = JournalWriter(root / "r", "r", flush_s=3600)
    open_writer.add(row(30, provider="c"))
    columns = [*TEXT, "request_index", "ttft_s"]
    plain = redact_text(read_rows(root, ["r"], columns=columns))
    encoded = read_rows(root, ["r"], columns=columns, dictionary=TEXT)
    assert all(pa.types.is_dictionary(encoded.schema.field(c).type) for c in TEXT)
    decoded = decode_text(redact_text(encoded))
    assert decoded.schema == plain.schema
    assert all(decoded.column(c).num_chunks == 1 for c in TEXT)
    assert decoded.to_pylist() == plain.to_pylist()  # 31 rows, value for value
    # rows 0, 7, 14, 21, 28 named the key: 5 rows, none of them keeps it
    models = decoded.column("model").to_pylist()
    assert sum(1 for m in models if m != "m") == 5
    assert not any(KEY in m for m in models)
    # read_frame (the reports' reader) goes this way: the same frame as before
    frame = read_frame(root, ["r"], columns)
    pd.testing.assert_frame_equal(frame, plain.to_pandas(), check_exact=True)
    open_writer.close()


def test_an_old_part_without_the_column_reads_it_as_nulls(tmp_path: Path) -> None:
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    old = pa.table({"run_id": ["old", "old"], "request_index": [0, 1], "provider": ["p", None]})
    pq.write_table(old, run_dir / "part-00000.parquet")
    table = decode_text(
        read_rows(tmp_path, ["old"], columns=["provider", "judge_model"], dictionary=TEXT)
    )
    assert table.column("provider").to_pylist() == ["p", None]
    assert table.column("judge_model").to_pylist() == [None, None]
    assert table.schema.field("judge_model").type == pa.string()


def test_a_secret_named_dictionary_column_loses_every_value_but_its_nulls() -> None:
    values = pa.array(["v", None, "w", "v"]).dictionary_encode()
    table = pa.table({"x_api_key": values, "note": pa.array(["a", KEY, None, "a"])})
    got = decode_text(redact_text(table)).to_pydict()
    assert got["x_api_key"] == ["***", None, "***", "***"]
    assert got["note"][0] == "a" and got["note"][2] is None and KEY not in got["note"][1]


def test_only_text_columns_have_a_dictionary(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="'ttft_s' is not text"):
        read_rows(tmp_path, ["r"], columns=["ttft_s"], dictionary=["ttft_s"])
