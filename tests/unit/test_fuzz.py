"""Fuzzing that reaches the code: mostly-valid configs and datasets with hostile values.

Random documents are almost never valid configs, so they only exercise the first
checks. These strategies build configs with a valid structure (simulated providers,
suites of kinds latency, rag_qa and cost with small datasets written to a temporary
directory) and hostile values (huge and tiny numbers, unicode, very long strings, deep
nesting), and sometimes one change that is known to be invalid. Properties:

- a config without such a change loads, and plans exactly the number of requests its
  suites say (computed here from the generated structure, not by the planner);
- ``--dry-run`` pricing never crashes: every line has a finite cost or "no estimate";
- a config with an invalid change raises :class:`ConfigError`, every line of which
  names a file and a line (``harness validate`` exits 2 on a few such examples);
- datasets with hostile values load (one case per record) or fail with file and line;
- summaries, renderings and exports of rows built from hostile values do not crash.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.config.spec import load_config
from harness.errors import ConfigError
from harness.run.plan import build_plan, plan_estimate
from harness.suites.datasets import DatasetError, load_cases

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    database=None,  # nothing written into the working tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(SETTINGS, max_examples=40)

# ------------------------------------------------------------------ hostile values

# Text YAML and JSON can hold: anything but lone surrogates.
_chars = st.characters(exclude_categories=("Cs",))
hostile_text = st.one_of(
    st.text(_chars, min_size=1, max_size=12),
    st.sampled_from(
        [
            "💥" * 40,
            "\u202eevil\u200b\u2028next\u0085",
            "\x00\x01\x1f",
            "${HOME} {{ question }} {% raw %} %s {0}",
            "'; DROP TABLE rows; --",
            "ǅǆ\u0301\ufeff",
            "a" * 4000,
            "word " * 600,
            "NaN",
            "-.inf",
        ]
    ),
)
# Text with something visible in it (questions, task prompts must not be blank).
visible_text = hostile_text.map(lambda t: t if t.strip() else t + "x")
names = st.from_regex(r"[A-Za-z0-9_.\-]{1,12}", fullmatch=True)
small = st.integers(1, 3)
# Valid, but far from the usual: zero delays, tiny and huge finite numbers.
delays_ms = st.sampled_from([0.0, 0.0001, 1.0, 5.0, 1e6])
prices = st.sampled_from([0.0, 1e-12, 0.15, 3.0, 75.0, 1e6])
seeds = st.sampled_from([0, 1, -1, 2**31, 2**63, -(2**70)])
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)


def nested(depth: int, leaf: Any) -> Any:
    for i in range(depth):
        leaf = {f"k{i}": leaf} if i % 2 else [leaf]
    return leaf


params = st.one_of(
    st.just({}),
    st.dictionaries(names.filter(lambda n: n.lower() not in _SECRET_PARAMS), scalars, max_size=3),
    st.builds(lambda d, v: {"metadata": nested(d, v)}, st.integers(1, 20), scalars),
)
_SECRET_PARAMS = {"api_key", "apikey", "key", "secret", "token", "password", "authorization"}


# ------------------------------------------------------------------ configs


@dataclass
class Generated:
    """A config and its files, what it should plan, and the invalid change (if any)."""

    files: dict[str, str] = field(default_factory=dict)
    expected: int = 0
    corruption: str | None = None

    def write(self, root: Path) -> Path:
        for name, text in self.files.items():
            (root / name).write_text(text, encoding="utf-8")
        return root / "config.yaml"


def dump(document: Any) -> str:
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=80)


@st.composite
def load_sections(draw: st.DrawFn) -> tuple[dict[str, Any] | None, int]:
    """An optional ``load:`` and its number of phases."""
    if draw(st.booleans()):
        return None, 1
    pattern = draw(st.sampled_from(["concurrency", "rate", "poisson"]))
    if pattern == "concurrency":
        levels: list[Any] = draw(st.lists(st.integers(1, 64), min_size=1, max_size=3))
    else:
        levels = draw(st.lists(st.sampled_from([0.001, 0.5, 2, 1e6]), min_size=1, max_size=3))
    section: dict[str, Any] = {"pattern": pattern, "levels": levels, "seed": draw(seeds)}
    return section, len(levels)


@st.composite
def latency_suites(draw: st.DrawFn, name: str) -> tuple[dict[str, Any], int]:
    requests = draw(small)
    suite: dict[str, Any] = {"name": name, "kind": "latency", "requests": requests}
    if draw(st.integers(0, 4)) == 0:
        suite["synthetic"] = {"input_tokens": draw(st.integers(1, 40)), "count": draw(small)}
    else:
        suite["prompts"] = draw(st.lists(hostile_text, min_size=1, max_size=3))
    suite["max_tokens"] = draw(st.sampled_from([1, 16, 4096, 10_000_000]))
    if draw(st.booleans()):
        suite["system"] = draw(hostile_text)
    load, levels = draw(load_sections())
    warmup = 0
    if load is not None:
        warmup = load["warmup"] = draw(st.integers(0, 2))
        suite["load"] = load
    # Each level sends its warm-up requests and then ``requests`` measured ones.
    return suite, levels * (warmup + requests)


@st.composite
def cost_suites(draw: st.DrawFn, name: str) -> tuple[dict[str, Any], int]:
    n = draw(small)
    tasks = [
        {"id": f"t{i}", "prompt": draw(visible_text)}
        | ({"max_tokens": draw(small)} if draw(st.booleans()) else {})
        for i in range(n)
    ]
    repeats = draw(small)
    suite: dict[str, Any] = {"name": name, "kind": "cost", "tasks": tasks, "repeats": repeats}
    load, levels = draw(load_sections())
    if load is not None:
        suite["load"] = load
    return suite, levels * repeats * n


@st.composite
def case_records(draw: st.DrawFn, n: int) -> list[dict[str, Any]]:
    """``n`` valid project-layout cases with hostile texts."""
    return [
        {
            "id": f"c{i}",
            "question": draw(visible_text),
            "contexts": draw(st.lists(visible_text, min_size=1, max_size=2)),
            "references": draw(st.lists(hostile_text, max_size=2)),
            "metadata": draw(
                st.one_of(
                    st.just({}),
                    st.builds(lambda d, v: {"deep": nested(d, v)}, st.integers(1, 30), scalars),
                )
            ),
        }
        for i in range(n)
    ]


@st.composite
def rag_suites(draw: st.DrawFn, name: str, files: dict[str, str]) -> tuple[dict[str, Any], int]:
    n = draw(small)
    dataset = f"{name}.jsonl"
    files[dataset] = "\n".join(
        json.dumps(r, ensure_ascii=draw(st.booleans())) for r in draw(case_records(n))
    )
    repeats = draw(small)
    suite: dict[str, Any] = {"name": name, "kind": "rag_qa", "dataset": dataset}
    suite["repeats"] = repeats
    limit = draw(st.one_of(st.none(), small))
    if limit is not None:
        suite["limit"] = limit
    if draw(st.booleans()):
        suite["judge"] = {"simulate": {"ttft_ms": draw(delays_ms)}}
    load, levels = draw(load_sections())
    if load is not None:
        suite["load"] = load
    return suite, levels * repeats * (min(limit, n) if limit else n)


@st.composite
def providers(draw: st.DrawFn, i: int) -> dict[str, Any]:
    provider: dict[str, Any] = {
        "name": f"p{i}-{draw(names)}",
        "simulate": {
            "ttft_ms": draw(delays_ms),
            "itl_ms": draw(delays_ms),
            "output_tokens": draw(st.sampled_from([1, 8, 10_000])),
            "jitter": draw(st.sampled_from([0.0, 0.5, 1.0])),
            "seed": draw(seeds),
        },
    }
    if draw(st.booleans()):
        provider["pricing"] = (
            {"per_second": draw(prices)}
            if draw(st.integers(0, 3)) == 0
            else {"input_per_mtok": draw(prices), "output_per_mtok": draw(prices)}
        )
    if draw(st.booleans()):
        provider["params"] = draw(params)
    if draw(st.booleans()):
        provider["tags"] = draw(
            st.dictionaries(
                names,
                st.one_of(hostile_text, st.integers(-(2**60), 2**60), st.booleans()),
                max_size=3,
            )
        )
    return provider


# Changes that make any config invalid: (description, apply to the document).
def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(doc: dict[str, Any]) -> None:
        target: Any = doc
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return apply


def _duplicate_provider(doc: dict[str, Any]) -> None:
    doc["providers"].append(dict(doc["providers"][0]))


CORRUPTIONS: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("bad provider name", _set(("providers", 0, "name"), "no spaces allowed!")),
    ("unicode provider name", _set(("providers", 0, "name"), "ünï💥")),
    ("NaN delay", _set(("providers", 0, "simulate", "ttft_ms"), math.nan)),
    ("infinite delay", _set(("providers", 0, "simulate", "itl_ms"), math.inf)),
    ("negative delay", _set(("providers", 0, "simulate", "ttft_ms"), -1.0)),
    ("delay as text", _set(("providers", 0, "simulate", "ttft_ms"), "fast")),
    ("unknown key", _set(("providers", 0, "tmeout_s"), 3)),
    ("duplicate provider", _duplicate_provider),
    ("zero max_tokens", _set(("suites", 0, "max_tokens"), 0)),
    ("negative timeout", _set(("run", "timeout_s"), -5)),
    ("infinite timeout", _set(("run", "timeout_s"), math.inf)),
    ("NaN budget", _set(("run", "budget_usd"), math.nan)),
    ("zero concurrency", _set(("run", "concurrency"), 0)),
    ("huge concurrency as text", _set(("run", "concurrency"), "10" * 40)),
    ("max_tokens past int64", _set(("suites", 0, "max_tokens"), 2**63)),
    ("a billion repeats", _set(("suites", 0, "repeats"), 10**9)),
    ("unknown suite kind", _set(("suites", 0, "kind"), "latncy")),
    ("bad run name", _set(("run", "name"), "a/b")),
    ("negative price", _set(("providers", 0, "pricing"), {"input_per_mtok": -1})),
    ("absurd price", _set(("providers", 0, "pricing"), {"output_per_mtok": 1.7e308})),
    ("deeply nested params", _set(("providers", 0, "params"), {"x": nested(120, 1)})),
    ("literal key", _set(("providers", 0, "params"), {"user": "sk-proj-" + "Qx7" * 10})),
    (
        "secret header without a variable",
        _set(("providers", 0, "params"), {"extra_headers": {"x-api-key": "plain"}}),
    ),
    ("empty providers", _set(("providers",), [])),
    ("suite is a number", _set(("suites", 0), 12)),
]


_SUITE_KEYS = {
    "zero max_tokens",
    "unknown suite kind",
    "max_tokens past int64",
    "a billion repeats",
}


@st.composite
def configs(draw: st.DrawFn, *, corrupt: bool | None = None) -> Generated:
    gen = Generated()
    n_providers = draw(st.integers(1, 3))
    doc: dict[str, Any] = {
        "run": {
            "name": draw(names),
            "concurrency": draw(st.sampled_from([1, 16, 10**6])),
            "timeout_s": draw(st.sampled_from([0.001, 120.0, 1e9])),
        },
        "providers": [draw(providers(i)) for i in range(n_providers)],
        "suites": [],
    }
    if draw(st.booleans()):
        doc["run"]["budget_usd"] = draw(st.sampled_from([1e-9, 25.0, 1e12]))
    per_provider = 0
    for i in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["latency", "rag_qa", "cost"]))
        name = f"s{i}-{kind}"
        if kind == "latency":
            suite, count = draw(latency_suites(name))
        elif kind == "cost":
            suite, count = draw(cost_suites(name))
        else:
            suite, count = draw(rag_suites(name, gen.files))
        per_provider += count
        if draw(st.integers(0, 3)) == 0:  # sometimes in a suite file of its own
            gen.files[f"{name}.yaml"] = dump(suite)
            doc["suites"].append(f"{name}.yaml")
        else:
            doc["suites"].append(suite)
    gen.expected = per_provider * n_providers
    if corrupt is None:
        corrupt = draw(st.integers(0, 3)) == 0
    if corrupt:
        description, apply = draw(st.sampled_from(CORRUPTIONS))
        if description in _SUITE_KEYS and isinstance(doc["suites"][0], str):
            # The first suite is in a file of its own: break the reference instead.
            description, apply = "suite is a number", _set(("suites", 0), 12)
        apply(doc)
        gen.corruption = description
    gen.files["config.yaml"] = dump(doc)
    return gen


_WHERE = re.compile(r"^(?P<file>/[^:]+):(?P<line>\d+): ")


def assert_names_file_and_line(message: str, root: Path) -> None:
    """Every line of a config error starts with ``file:line: `` of a file we wrote."""
    for line in message.splitlines():
        match = _WHERE.match(line)
        assert match, f"no file:line in {line!r}"
        assert Path(match["file"]).resolve().parent == root.resolve(), line
        assert int(match["line"]) >= 1


@SETTINGS
@given(configs())
def test_mostly_valid_configs_plan_what_their_suites_say(gen: Generated) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = gen.write(root)
        try:
            spec = load_config(path)
        except ConfigError as exc:
            error = str(exc)
        else:
            error = None
        if error is not None:
            assert gen.corruption is not None, f"a valid config was refused: {error}"
            assert_names_file_and_line(error, root)
            return
        assert gen.corruption is None, f"{gen.corruption!r} was accepted"
        plan = build_plan(spec)
        assert sum(len(phase.requests) for phase in plan) == gen.expected


@FEW
@given(configs(corrupt=False))
def test_dry_run_pricing_gives_a_number_or_no_estimate(gen: Generated) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        spec = load_config(gen.write(Path(tmp)))
        lines, _ = plan_estimate(spec)
        assert sum(line.requests for line in lines) == gen.expected
        for line in lines:
            assert (line.cost_low is None) == (line.cost_high is None)
            if line.cost_low is not None and line.cost_high is not None:
                assert math.isfinite(line.cost_low) and math.isfinite(line.cost_high), line
                assert 0 <= line.cost_low <= line.cost_high
            else:
                assert line.price_source  # the dry run says why: no price, or per second


@pytest.mark.parametrize("description", [d for d, _ in CORRUPTIONS[::4]])
def test_cli_validate_exits_2_with_file_and_line(tmp_path: Path, description: str) -> None:
    apply = dict(CORRUPTIONS)[description]
    doc: dict[str, Any] = {
        "run": {"name": "r"},
        "providers": [{"name": "a", "simulate": {}, "pricing": {"input_per_mtok": 1}}],
        "suites": [{"name": "s", "kind": "latency", "prompts": ["hi"], "requests": 2}],
    }
    apply(doc)
    path = tmp_path / "config.yaml"
    path.write_text(dump(doc), encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert re.search(rf"^error: {re.escape(str(path))}:\d+: ", result.output, re.M), result.output


def test_cli_dry_run_of_a_valid_config_prints_an_estimate(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        dump(
            {
                "providers": [
                    {"name": "priced", "simulate": {}, "pricing": {"input_per_mtok": 1e6}},
                    {"name": "free", "simulate": {}},
                ],
                "suites": [{"name": "s", "kind": "latency", "prompts": ["💥" * 50]}],
            }
        )
    )
    result = CliRunner().invoke(main, ["run", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    # 2 providers × 10 requests (the default) = 20.
    assert "20 requests; priced part $" in result.output and "no estimate for" in result.output


# ------------------------------------------------------------------ datasets


def _bad_record(kind: str) -> Any:
    return {
        "references as a number": {"id": "x", "question": "q", "references": 3},
        "blank question": {"id": "x", "question": "  \t", "references": []},
        "context not a string": {"id": "x", "question": "q", "contexts": [1], "references": []},
        "unknown key": {"id": "x", "question": "q", "references": [], "extra": 1},
        "not an object": [1, 2, 3],
    }[kind]


@SETTINGS
@given(
    st.integers(1, 4).flatmap(case_records),
    st.one_of(
        st.none(),
        st.sampled_from(
            [
                "references as a number",
                "blank question",
                "context not a string",
                "unknown key",
                "not an object",
                "NaN",
                "duplicate id",
                "deeply nested",
            ]
        ),
    ),
    st.sampled_from(["jsonl", "csv"]),
)
def test_hostile_datasets_load_or_fail_with_file_and_line(
    records: list[dict[str, Any]], bad: str | None, fmt: str
) -> None:
    lines = [json.dumps(r) for r in records]
    at = len(lines)  # the bad record goes last: its line is len(records) + 1 (JSONL)
    if bad == "NaN":
        lines.append('{"id": "x", "question": NaN, "references": []}')
    elif bad == "duplicate id":
        lines.append(json.dumps({**records[0], "question": "again?"}))
    elif bad == "deeply nested":
        lines.append('{"id": "x", "question": "q", "references": [], "metadata": {"a": ')
        lines[-1] += "[" * 5000 + "]" * 5000 + "}}"
    elif bad is not None:
        lines.append(json.dumps(_bad_record(bad)))
    with tempfile.TemporaryDirectory() as tmp:
        if fmt == "jsonl":
            path = Path(tmp) / "d.jsonl"
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            path = Path(tmp) / "d.csv"
            _write_csv(path, records)
            bad = None  # the CSV holds the valid records only: hostile texts, no bad record
        try:
            cases = load_cases(path)
        except DatasetError as exc:
            error = str(exc)
        else:
            error = None
        if error is not None:
            assert bad is not None, f"valid records refused: {error}"
            if fmt == "jsonl":
                assert error.startswith(f"{path}:{at + 1}: "), error
            return
        assert bad is None, f"{bad!r} was accepted"
        assert [c.id for c in cases] == [r["id"] for r in records]
        assert [c.question for c in cases] == [r["question"] for r in records]


def _write_csv(path: Path, records: list[dict[str, Any]]) -> None:
    import csv

    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "question", "contexts", "references"])
        writer.writeheader()
        for r in records:
            writer.writerow(
                {
                    "id": r["id"],
                    "question": r["question"],
                    "contexts": json.dumps(r["contexts"]),
                    "references": json.dumps(r["references"]),
                }
            )


# ------------------------------------------------------------------ reports

# Values a row could hold after a broken measurement: NaN, ±inf, zero, negative, tiny,
# huge (within what a sum of thousands of rows keeps finite).
floats = st.one_of(
    st.none(),
    st.floats(-1e12, 1e12),
    st.sampled_from([0.0, -0.0, 1e-300, -1.0, math.nan, math.inf, -math.inf]),
)
counts = st.one_of(st.none(), st.integers(-(2**40), 2**40), st.sampled_from([0, 1]))


@st.composite
def rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i in range(draw(st.integers(1, 8))):
        ok = draw(st.booleans())
        out.append(
            {
                "run_id": "r",
                "suite": "ünï-s",
                "suite_kind": draw(st.sampled_from(["latency", "rag_qa", "cost"])),
                "case_id": f"c{i % 3}",
                "repeat": i // 3,
                "load_level": draw(st.sampled_from([None, "rate=1e+06"])),
                "warmup": draw(st.booleans()) and i > 0,
                "provider": draw(st.sampled_from(["a", "b 💥", "\u202ec"])),
                "model": draw(st.one_of(st.none(), hostile_text)),
                "simulated": draw(st.booleans()),
                "status": "ok" if ok else "error",
                "error_type": None if ok else draw(st.sampled_from(["http_500", "rate_limited"])),
                "error_message": None if ok else draw(hostile_text),
                "started_at": start + timedelta(seconds=draw(st.integers(0, 10**6))),
                "ttft_s": draw(floats),
                "e2e_s": draw(floats),
                "itl_s": draw(floats),
                "tpot_s": draw(floats),
                "output_tps": draw(floats),
                "output_tokens": draw(counts),
                "input_tokens": draw(counts),
                "input_chars": draw(counts),
                "output_chars": draw(counts),
                "cost_usd": draw(floats),
                "price_input_per_mtok": draw(floats),
                "price_output_per_mtok": draw(floats),
                "response_text": draw(hostile_text),
                "exact_match": draw(st.one_of(st.none(), st.sampled_from([0.0, 1.0]))),
                "f1": draw(st.one_of(st.none(), st.floats(0, 1))),
                "judge_correctness": draw(st.one_of(st.none(), st.sampled_from([0.0, 0.5, 1.0]))),
                "clock_ok": draw(st.booleans()),
            }
        )
    return out


@settings(SETTINGS, max_examples=20)  # each summary bootstraps its intervals: ~0.5 s
@given(rows())
def test_reports_of_hostile_rows_do_not_crash(records: list[dict[str, Any]]) -> None:
    from harness.report import render, summarize
    from harness.report.export import Report, export
    from harness.store.schema import SCHEMA

    # Through Arrow with the stored schema, as a report reads them.
    frame = pa.Table.from_pylist(records, schema=SCHEMA).to_pandas()
    summary = summarize(frame)
    measured = [r for r in records if not r["warmup"]]
    assert int(summary["requests"].sum()) == len(measured)
    for fmt in ("table", "markdown", "csv", "json"):
        assert isinstance(render(summary, fmt, title="t"), str)
    with tempfile.TemporaryDirectory() as tmp:
        report = Report("fuzz", ["r"], {"summary": summary, "requests": frame}, ["note ünï"])
        for ext in ("md", "html", "json", "csv"):
            assert export(report, Path(tmp) / f"r.{ext}").stat().st_size > 0


# ------------------------------------------------------------------ arbitrary input

RANDOM = settings(SETTINGS, max_examples=100)


@RANDOM
@given(st.text(max_size=300))
def test_arbitrary_text_configs_load_or_fail_naming_the_file(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        with pytest.raises(ConfigError) as info:
            load_config(path)  # random text is never a valid config
        assert str(info.value).startswith(str(path))


@RANDOM
@given(st.binary(max_size=300), st.sampled_from(["d.jsonl", "d.csv", "d.json", "d.parquet"]))
def test_arbitrary_bytes_datasets_load_or_fail_naming_the_file(data: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            load_cases(path)
        except DatasetError as exc:
            error = str(exc)
        else:
            error = None
        assert error is None or error.startswith(str(path)), error
