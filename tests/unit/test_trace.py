"""Reading and planning trace files (harness.suites.trace): layouts, windows, lengths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.cost.tokens import count_tokens
from harness.suites.latency import LatencySuite, plan
from harness.suites.trace import TraceError, prompt_for, read_trace, window

TRACES = Path(__file__).resolve().parents[1] / "data" / "traces"


def test_harness_layout() -> None:
    rows = read_trace(TRACES / "sample.jsonl")
    raw = [json.loads(line) for line in (TRACES / "sample.jsonl").read_text().splitlines()]
    assert len(rows) == 40
    assert [r.arrival_s for r in rows] == [r["arrival_s"] for r in raw]  # first is 0 already
    assert [r.input_tokens for r in rows] == [r["input_tokens"] for r in raw]
    assert rows[1].prefix_id == "system-1"


def test_mooncake_layout_times_in_ms_and_shared_blocks() -> None:
    rows = read_trace(TRACES / "mooncake.jsonl")
    # The file's third row: "timestamp": 126 (ms) → 0.126 s; hash_ids [0, 120, 121].
    assert rows[2].arrival_s == pytest.approx(0.126)
    assert rows[2].hash_ids == (0, 120, 121)
    first, third = prompt_for(rows[0], 0), prompt_for(rows[2], 0)
    assert count_tokens(first) == rows[0].input_tokens == 526
    assert count_tokens(third) == rows[2].input_tokens == 1173
    # Both start with block 0: their first 512 tokens are the same text.
    assert first[:2000] == third[:2000]
    assert prompt_for(rows[0], 1)[:100] != first[:100]  # another seed, other words


def test_azure_layout_with_seven_fractional_digits() -> None:
    rows = read_trace(TRACES / "azure.csv")
    # 18:15:46.0159000 - 18:15:46.0000000 = 0.0159 s; ContextTokens 138, GeneratedTokens 10.
    assert rows[1].arrival_s == pytest.approx(0.0159)
    assert (rows[1].input_tokens, rows[1].output_tokens) == (138, 10)


def test_window_and_speed(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "arrival_s,input_tokens,output_tokens\n"
        + "".join(f"{t},5,3\n" for t in (3.0, 0.0, 0.5, 1.0, 2.5, 4.0))
    )
    rows = read_trace(path)
    assert [r.arrival_s for r in rows] == [0, 0.5, 1.0, 2.5, 3.0, 4.0]  # sorted
    # Window [1, 3) keeps 1.0 and 2.5; at speed 2 they are sent at (1-1)/2 = 0 and
    # (2.5-1)/2 = 0.75 s.
    assert [off for off, _ in window(rows, 1.0, 2.0, 2.0)] == [0.0, 0.75]
    assert len(window(rows, 0.0, None, 1.0)) == 6


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        (
            '{"arrival_s": 0, "input_tokens": 5, "output_tokens": 2}\n{"arrival_s": "soon", '
            '"input_tokens": 5, "output_tokens": 2}\n',
            "t.jsonl",
            r"t.jsonl:2: arrival_s is 'soon'",
        ),
        (
            '{"arrival_s": 0, "input_tokens": 5.5, "output_tokens": 2}\n',
            "t.jsonl",
            r"t.jsonl:1: input_tokens is 5.5, not a token count",
        ),
        ("when,prompt\n1,2\n", "t.csv", r"t.csv: columns when, prompt match no trace layout"),
        ('{"arrival_s": 0, "input_tokens": 5}\n', "t.jsonl", "match no trace layout"),
        (
            "TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,5,5\n",
            "t.csv",
            r"t.csv:2: TIMESTAMP is 'yesterday', not a date",
        ),
        ("{nope\n", "t.jsonl", r"t.jsonl:1: not JSON"),
    ],
)
def test_bad_traces_name_file_and_line(tmp_path: Path, text: str, name: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(TraceError, match=message):
        read_trace(path)


def test_plan_sends_traced_lengths_at_traced_offsets() -> None:
    suite = LatencySuite.model_validate(
        {
            "name": "replay",
            "load": {
                "pattern": "trace",
                "trace": str(TRACES / "sample.jsonl"),
                "speed": 2.0,
                "warmup": 2,
            },
        }
    )
    requests = list(plan(suite, "p"))
    raw = [json.loads(line) for line in (TRACES / "sample.jsonl").read_text().splitlines()]
    assert len(requests) == 40
    assert {r.load_level for r in requests} == {"trace=2x"}
    assert [r.meta["arrival_s"] for r in requests] == [r["arrival_s"] / 2 for r in raw]
    assert [r.max_tokens for r in requests] == [r["output_tokens"] for r in raw]
    assert [count_tokens(r.messages[0]["content"]) for r in requests[:5]] == [
        r["input_tokens"] for r in raw[:5]
    ]
    assert [r.warmup for r in requests[:3]] == [True, True, False]


def test_the_plan_carries_offsets_into_the_phase(write_config) -> None:  # type: ignore[no-untyped-def]
    from harness.config.spec import load_config
    from harness.run.plan import build_plan

    path = write_config(
        f"""
        providers: [{{name: p, simulate: {{}}}}]
        suites:
          - name: replay
            kind: latency
            load: {{pattern: trace, trace: "{TRACES / "azure.csv"}", start_s: 0.1, duration_s: 1}}
        """
    )
    (phase,) = build_plan(load_config(path))
    rows = [r for r in read_trace(TRACES / "azure.csv") if 0.1 <= r.arrival_s < 1.1]
    assert phase.pattern == "trace" and len(phase.requests) == len(rows) > 0
    assert phase.offsets == pytest.approx([r.arrival_s - 0.1 for r in rows])


def test_validate_refuses_a_bad_trace_with_exit_2(write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "bad.jsonl").write_text(
        '{"arrival_s": 0, "input_tokens": -3, "output_tokens": 1}\n'
    )
    path = write_config(
        """
        providers: [{name: p, simulate: {}}]
        suites:
          - name: replay
            kind: latency
            load: {pattern: trace, trace: bad.jsonl}
        """
    )
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    assert "bad.jsonl:1: input_tokens is -3" in result.output
    path = write_config(
        """
        providers: [{name: p, simulate: {}}]
        suites:
          - name: replay
            kind: latency
            load: {pattern: trace, trace: bad.jsonl, start_s: 100}
        """
    )
    (tmp_path / "bad.jsonl").write_text('{"arrival_s": 0, "input_tokens": 3, "output_tokens": 1}\n')
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2 and "falls in the window" in result.output
