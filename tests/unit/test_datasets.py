"""Tests for harness.suites.datasets (loading, converting, errors), harness.suites.prompting, and the
shipped RAG QA knowledge base suites/rag_qa/acme_kb.jsonl."""

from __future__ import annotations

import csv
import datetime
import json
import random
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from harness.errors import HarnessError
from harness.scoring import is_abstention, is_unanswerable
from harness.suites.datasets import (
    FORMATS,
    Case,
    DatasetError,
    import_dataset,
    load_cases,
    write_jsonl,
)
from harness.suites.prompting import (
    DEFAULT_SYSTEM,
    DEFAULT_TEMPLATE,
    check_template,
    render_messages,
)
from tests.conftest import TEST_DATA

REPO = Path(__file__).resolve().parents[2]
# SQuAD 2.0 test data ships in the repository: tests/data/squad-v2 (CC BY-SA 4.0).
SQUAD_DIR = TEST_DATA / "squad-v2"
KB_DIR = REPO / "suites" / "rag_qa"


def _squad_file(name: str) -> Path:
    # A missing file must fail loudly: skipping would hide that the check never ran.
    path = SQUAD_DIR / name
    assert path.is_file(), (
        f"SQuAD test data not found: {path} (it ships in tests/data/squad-v2/{name})"
    )
    return path


CASES = [
    Case(
        id="q1",
        question="Who wrote it?",
        contexts=["It was written by Ada Lovelace in 1843."],
        references=["Ada Lovelace", "Lovelace"],
        metadata={"topic": "history", "doc_ids": ["d1"], "n": 3, "nested": {"a": [1, None]}},
    ),
    Case(
        id="q2",
        question='Unicode: café, 東京, "quotes", a\nnewline and {{ braces }}?',
        contexts=["First passage, with a comma.", "Second passage\nover two lines; 東京."],
        references=[],
        metadata={},
    ),
    Case(
        id="q3",
        question="When?",
        contexts=["In 1843.", "Not here.", "Line separators \u2028, \u2029 and \x85 inside."],
        references=["1843"],
        metadata={"score": 0.5, "flag": True},
    ),
]


def _write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return path


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _roundtrip(cases: list[Case], tmp_path: Path) -> list[Case]:
    """Write cases as project JSONL and read them back."""
    out = tmp_path / "roundtrip.jsonl"
    write_jsonl(cases, out)
    return load_cases(out)


# --------------------------------------------------------------------------- round trips


def test_case_answerable_and_to_dict() -> None:
    assert CASES[0].answerable
    assert not CASES[1].answerable
    assert CASES[0].to_dict() == {
        "id": "q1",
        "question": "Who wrote it?",
        "contexts": ["It was written by Ada Lovelace in 1843."],
        "references": ["Ada Lovelace", "Lovelace"],
        "metadata": CASES[0].metadata,
    }


def test_project_jsonl_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    write_jsonl(CASES, path)
    assert load_cases(path) == CASES
    assert load_cases(path, "jsonl") == CASES
    # One object a line, in the documented key order, UTF-8 not escaped.
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    assert list(json.loads(lines[0])) == ["id", "question", "contexts", "references", "metadata"]
    assert "東京" in lines[1]
    assert not list(tmp_path.glob(".*tmp")), "temporary file left behind"


def test_project_csv_roundtrip(tmp_path: Path) -> None:
    path = _write_csv(
        tmp_path / "cases.csv",
        ["id", "question", "contexts", "references", "metadata"],
        [
            [
                c.id,
                c.question,
                json.dumps(c.contexts, ensure_ascii=False),
                json.dumps(c.references),
                json.dumps(c.metadata),
            ]
            for c in CASES
        ],
    )
    assert load_cases(path) == CASES
    assert import_dataset("csv", path, tmp_path / "out.jsonl") == 3
    assert load_cases(tmp_path / "out.jsonl") == CASES


def test_project_parquet_roundtrip(tmp_path: Path) -> None:
    # Lists as list columns; metadata once as a JSON string column, once as a struct column.
    rows = [{**c.to_dict(), "metadata": json.dumps(c.metadata)} for c in CASES]
    path = tmp_path / "cases.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    assert load_cases(path) == CASES
    assert import_dataset("parquet", path, tmp_path / "out.jsonl") == 3
    assert load_cases(tmp_path / "out.jsonl") == CASES

    frame = pd.DataFrame([{**c.to_dict(), "metadata": {"k": i}} for i, c in enumerate(CASES)])
    frame.index = pd.Index([10, 11, 12])  # a non-default index is stored as a column
    frame.to_parquet(tmp_path / "pandas.parquet")
    loaded = load_cases(tmp_path / "pandas.parquet")
    assert [c.metadata for c in loaded] == [{"k": 0}, {"k": 1}, {"k": 2}]
    assert [c.contexts for c in loaded] == [c.contexts for c in CASES]
    assert _roundtrip(loaded, tmp_path) == loaded


def test_squad_official_json_roundtrip(tmp_path: Path) -> None:
    document = {
        "version": "v2.0",
        "data": [
            {
                "title": "Lovelace",
                "paragraphs": [
                    {
                        "context": "It was written by Ada Lovelace in 1843.",
                        "qas": [
                            {
                                "id": "a",
                                "question": "Who wrote it?",
                                "answers": [
                                    {"text": "Ada Lovelace", "answer_start": 18},
                                    {"text": "Ada Lovelace", "answer_start": 18},
                                    {"text": "Lovelace", "answer_start": 22},
                                    {"text": "", "answer_start": 0},
                                ],
                                "is_impossible": False,
                            },
                            {
                                "id": "b",
                                "question": "Who read it?",
                                "answers": [],
                                "plausible_answers": [{"text": "Ada", "answer_start": 18}],
                                "is_impossible": True,
                            },
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(document))
    expected = [
        Case(
            "a",
            "Who wrote it?",
            ["It was written by Ada Lovelace in 1843."],
            ["Ada Lovelace", "Lovelace"],
            {"title": "Lovelace"},
        ),
        Case(
            "b",
            "Who read it?",
            ["It was written by Ada Lovelace in 1843."],
            [],
            {"title": "Lovelace", "plausible_answers": ["Ada"]},
        ),
    ]
    assert load_cases(path) == expected
    assert load_cases(path, "squad") == expected
    assert import_dataset("squad", path, tmp_path / "out.jsonl") == 2
    assert load_cases(tmp_path / "out.jsonl") == expected


def test_squad_row_jsonl_roundtrip(tmp_path: Path) -> None:
    rows = [
        {
            "id": "r1",
            "title": "T",
            "context": "Paris is in France.",
            "question": "Where is Paris?",
            "answers": ["France", "France", "in France"],
            "is_impossible": False,
        },
        {
            "id": "r2",
            "title": "T",
            "context": "Paris is in France.",
            "question": "Where is Rome?",
            "answers": [],
            "is_impossible": True,
        },
        # is_impossible wins over stray answers; answers may be SQuAD answer objects.
        {
            "id": "r3",
            "context": "c",
            "question": "q",
            "answers": [{"text": "x", "answer_start": 0}],
            "is_impossible": True,
        },
        {"id": "r4", "context": "c", "question": "q?", "answers": [{"text": "c"}]},
    ]
    path = _write_jsonl(tmp_path / "rows.jsonl", rows)
    cases = load_cases(path)
    assert [c.references for c in cases] == [["France", "in France"], [], [], ["c"]]
    assert cases[0].contexts == ["Paris is in France."]
    assert cases[0].metadata == {"title": "T"}
    assert _roundtrip(cases, tmp_path) == cases
    assert load_cases(path, "squad") == cases


def test_ragas_jsonl_csv_parquet_roundtrip(tmp_path: Path) -> None:
    expected = [
        Case("ragas-0", "Q one?", ["c1", "c2"], ["A one"], {}),
        Case("ragas-1", "Q two?", ["c3"], [], {}),
    ]
    # JSONL with ground_truths lists.
    jsonl = _write_jsonl(
        tmp_path / "ragas.jsonl",
        [
            {"question": "Q one?", "contexts": ["c1", "c2"], "ground_truths": ["A one", ""]},
            {"question": "Q two?", "contexts": ["c3"], "ground_truths": []},
        ],
    )
    assert load_cases(jsonl) == expected
    # CSV as pandas.to_csv writes it: lists in Python literal syntax, ground_truth a string.
    frame = pd.DataFrame(
        {
            "question": ["Q one?", "Q two?"],
            "contexts": [["c1", "c2"], ["c3"]],
            "ground_truth": ["A one", ""],
        }
    )
    frame.to_csv(tmp_path / "ragas.csv", index=False)
    assert "['c1', 'c2']" in (tmp_path / "ragas.csv").read_text()
    assert load_cases(tmp_path / "ragas.csv") == expected
    # Parquet with list columns; contexts JSON-encoded strings in a second file.
    frame.to_parquet(tmp_path / "ragas.parquet")
    assert load_cases(tmp_path / "ragas.parquet") == expected
    frame.assign(contexts=[json.dumps(c) for c in frame["contexts"]]).to_parquet(
        tmp_path / "encoded.parquet"
    )
    encoded = load_cases(tmp_path / "encoded.parquet")
    assert [(c.contexts, c.references) for c in encoded] == [
        (["c1", "c2"], ["A one"]),
        (["c3"], []),
    ]
    for name in ("ragas.jsonl", "ragas.csv", "ragas.parquet"):
        dest = tmp_path / f"{name}.out.jsonl"
        assert import_dataset("ragas", tmp_path / name, dest) == 2
        assert [(c.question, c.contexts, c.references) for c in load_cases(dest)] == [
            (c.question, c.contexts, c.references) for c in expected
        ]


def test_ragas_reference_columns(tmp_path: Path) -> None:
    rows = [
        # newer ragas: user_input / retrieved_contexts / reference
        {"user_input": "Q?", "retrieved_contexts": ["c"], "reference": "R", "response": "gen"},
        # older ragas: a generated answer next to the ground truth stays metadata
        {"id": "x", "question": "Q2?", "contexts": '["c2"]', "ground_truth": "G", "answer": "gen"},
        # answer is the reference only when there is no ground-truth column
        {"question": "Q3?", "contexts": ["c3"], "answer": "A"},
    ]
    path = _write_jsonl(tmp_path / "mixed.jsonl", rows)
    cases = load_cases(path, "ragas")
    assert [(c.id, c.question, c.contexts, c.references) for c in cases] == [
        ("mixed-0", "Q?", ["c"], ["R"]),
        ("x", "Q2?", ["c2"], ["G"]),
        ("mixed-2", "Q3?", ["c3"], ["A"]),
    ]
    assert cases[0].metadata == {"response": "gen"}
    assert cases[1].metadata == {"answer": "gen"}
    assert _roundtrip(cases, tmp_path) == cases


def test_json_containers_and_format_override(tmp_path: Path) -> None:
    records = [c.to_dict() for c in CASES]
    (tmp_path / "list.json").write_text(json.dumps(records))
    assert load_cases(tmp_path / "list.json") == CASES
    columns = {key: [r[key] for r in records] for key in records[0]}
    (tmp_path / "columns.json").write_text(json.dumps(columns))
    assert load_cases(tmp_path / "columns.json") == CASES
    (tmp_path / "one.json").write_text(json.dumps(records[0], indent=2))
    assert load_cases(tmp_path / "one.json") == CASES[:1]
    (tmp_path / "one.json").write_text(json.dumps({**records[0], "question": 1}, indent=2))
    with pytest.raises(DatasetError, match=r"one\.json: question must be a string"):
        load_cases(tmp_path / "one.json")
    # A .json file holding JSON Lines (as datasets' to_json writes) is read as JSONL.
    _write_jsonl(tmp_path / "lines.json", records)
    assert load_cases(tmp_path / "lines.json") == CASES
    # Unknown extensions: sniffed, or forced with format.
    _write_jsonl(tmp_path / "cases.txt", records)
    assert load_cases(tmp_path / "cases.txt") == CASES
    assert load_cases(tmp_path / "cases.txt", "jsonl") == CASES
    pq.write_table(
        pa.Table.from_pylist([{**r, "metadata": json.dumps(r["metadata"])} for r in records]),
        tmp_path / "cases.bin",
    )
    assert load_cases(tmp_path / "cases.bin") == CASES
    _write_csv(
        tmp_path / "cases.data", ["question", "contexts", "references"], [["q", '["c"]', "[]"]]
    )
    assert load_cases(tmp_path / "cases.data", "csv") == [Case("cases-0", "q", ["c"], [], {})]
    with pytest.raises(DatasetError, match=r"cases\.data: cannot tell the format .*pass a format"):
        load_cases(tmp_path / "cases.data")


def test_defaults_ids_and_reference_cleanup(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "mini.jsonl",
        [
            {"question": "a?", "contexts": ["c"], "references": ["x", " ", "", "x", "y"]},
            {"id": "", "question": "b?", "contexts": ["c"], "references": ["", "  "]},
            {"id": 7, "question": "c?", "contexts": ["c"], "references": []},
        ],
    )
    cases = load_cases(path)
    assert [c.id for c in cases] == ["mini-0", "mini-1", "7"]
    assert [c.references for c in cases] == [["x", "y"], [], []]
    assert [c.answerable for c in cases] == [True, False, False]
    assert all(c.metadata == {} for c in cases)


def test_import_dataset_auto_and_unknown_format(tmp_path: Path) -> None:
    src = _write_jsonl(tmp_path / "src.jsonl", [c.to_dict() for c in CASES])
    dest = tmp_path / "nested" / "dir" / "dest.jsonl"
    assert import_dataset("auto", src, dest) == 3
    assert load_cases(dest) == CASES
    assert set(FORMATS) == {"jsonl", "csv", "parquet", "squad", "ragas"}
    with pytest.raises(DatasetError, match=r"unknown dataset format 'xml'.*jsonl, csv"):
        import_dataset("xml", src, dest)


# --------------------------------------------------------------------------- SQuAD data


def test_squad_sample_200() -> None:
    cases = load_cases(_squad_file("sample-200.jsonl"))
    assert len(cases) == 200
    assert sum(not c.answerable for c in cases) == 50
    assert all(len(c.contexts) == 1 and c.metadata.get("title") for c in cases)
    assert len({c.id for c in cases}) == 200


def test_squad_dev_half(tmp_path: Path) -> None:
    path = _squad_file("dev-v2.0-half.json")
    cases = load_cases(path)
    assert len(cases) == 6078
    assert sum(not c.answerable for c in cases) == 3168
    # The scorer agrees on which questions are unanswerable.
    assert all(is_unanswerable(c.references) == (not c.answerable) for c in cases)
    # References are the answer texts, deduplicated in order.
    raw = json.loads(path.read_text())
    first_qa = raw["data"][0]["paragraphs"][0]["qas"][1]
    expected = list(dict.fromkeys(a["text"] for a in first_qa["answers"]))
    assert cases[1].id == first_qa["id"]
    assert cases[1].references == expected
    # The whole set converts to JSONL and back unchanged.
    assert import_dataset("squad", path, tmp_path / "dev.jsonl") == 6078
    assert load_cases(tmp_path / "dev.jsonl") == cases


# --------------------------------------------------------------------------- errors

VALID = {"id": "ok", "question": "q?", "contexts": ["c"], "references": ["r"]}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "x", "question": ', "invalid JSON"),
        ("[1, 2]", "expected a JSON object, got a list"),
        ('"just a string"', "expected a JSON object, got a string"),
        ('{"id": "x", "contexts": ["c"], "references": []}', "missing question"),
        ('{"id": "x", "question": "  ", "contexts": ["c"], "references": []}', "question is empty"),
        (
            '{"id": "x", "question": 3, "contexts": ["c"], "references": []}',
            "question must be a string",
        ),
        ('{"id": "x", "question": "q", "references": []}', "missing contexts"),
        (
            '{"id": "x", "question": "q", "contexts": "c", "references": []}',
            "contexts must be a list of strings",
        ),
        (
            '{"id": "x", "question": "q", "contexts": ["c", 5], "references": []}',
            "contexts[1] must be a string",
        ),
        ('{"id": "x", "question": "q", "contexts": [], "references": []}', "contexts is empty"),
        (
            '{"id": "x", "question": "q", "contexts": [" "], "references": []}',
            "contexts[0] is an empty passage",
        ),
        ('{"id": "x", "question": "q", "contexts": ["c"]}', "missing references"),
        (
            '{"id": "x", "question": "q", "contexts": ["c"], "references": "r"}',
            "references must be a list",
        ),
        (
            '{"id": "x", "question": "q", "contexts": ["c"], "references": [], "metadata": []}',
            "metadata must be an object",
        ),
        (
            '{"id": "x", "question": "q", "contexts": ["c"], "references": [], "extra": 1}',
            "unknown key 'extra'",
        ),
        (
            '{"id": true, "question": "q", "contexts": ["c"], "references": []}',
            "id must be a string",
        ),
        (
            '{"id": "ok", "question": "q", "contexts": ["c"], "references": []}',
            "duplicate id 'ok' (first used at line 1)",
        ),
        (
            '{"id": "x", "question": "q", "contexts": ["c"], "references": [NaN]}',
            "NaN is not valid JSON",
        ),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(VALID) + "\n\n" + line + "\n")
    with pytest.raises(DatasetError) as info:
        load_cases(path)
    text = str(info.value)
    assert text.startswith(f"{path}:3: "), text
    assert message in text, text
    assert isinstance(info.value, HarnessError)


def test_layout_not_recognised(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "x.jsonl", [{"question": "q", "contexts": ["c"]}])
    with pytest.raises(
        DatasetError, match=r"x\.jsonl:1: cannot tell the dataset layout .*'references'"
    ):
        load_cases(path)


def test_csv_errors_name_the_starting_line(tmp_path: Path) -> None:
    header = ["id", "question", "contexts", "references"]
    # Line 2 holds a cell spanning lines 2-4, so the bad record starts on line 5.
    good = ["a", "multi\nline\nquestion", '["c"]', "[]"]
    _write_csv(tmp_path / "a.csv", header, [good, ["b", "q", "not a list", "[]"]])
    with pytest.raises(DatasetError, match=r"a\.csv:5: contexts: expected a JSON-encoded list"):
        load_cases(tmp_path / "a.csv")
    _write_csv(tmp_path / "b.csv", header, [good, ["b", "q", '["c"]']])
    with pytest.raises(DatasetError, match=r"b\.csv:5: 3 fields, but the header has 4"):
        load_cases(tmp_path / "b.csv")
    _write_csv(tmp_path / "c.csv", header, [good, ["b", "q", '["c"', "[]"]])
    with pytest.raises(DatasetError, match=r"c\.csv:5: contexts: not valid JSON"):
        load_cases(tmp_path / "c.csv")
    _write_csv(tmp_path / "d.csv", [*header, "id"], [])
    with pytest.raises(DatasetError, match=r"d\.csv:1: duplicate column 'id'"):
        load_cases(tmp_path / "d.csv")
    (tmp_path / "e.csv").write_text('id,question,contexts,references\na,"unterminated\n')
    with pytest.raises(DatasetError, match=r"e\.csv:\d+: invalid CSV"):
        load_cases(tmp_path / "e.csv")


def test_squad_json_errors_name_the_record_path(tmp_path: Path) -> None:
    qa = {"id": "a", "question": "q", "answers": [], "is_impossible": True}
    document = {
        "data": [
            {"title": "t", "paragraphs": [{"context": "c", "qas": [qa]}]},
            {
                "title": "u",
                "paragraphs": [
                    {
                        "context": "c",
                        "qas": [{**qa, "id": "b"}, {**qa, "id": "c"}, {"id": "d", "answers": []}],
                    }
                ],
            },
        ]
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(
        DatasetError, match=r"bad\.json: data\[1\]\.paragraphs\[0\]\.qas\[2\]: missing question"
    ):
        load_cases(path)
    document["data"][1]["paragraphs"][0]["qas"][2] = {**qa, "id": "d", "is_impossible": "yes"}
    path.write_text(json.dumps(document))
    with pytest.raises(DatasetError, match=r"qas\[2\]: is_impossible must be true or false"):
        load_cases(path)
    document["data"][1]["paragraphs"] = {"context": "c"}
    path.write_text(json.dumps(document))
    with pytest.raises(
        DatasetError, match=r"bad\.json: data\[1\]\.paragraphs: missing or not a list"
    ):
        load_cases(path)
    path.write_text('{"data": [\n  {"title": "t",\n   "paragraphs": [}\n]}')
    with pytest.raises(DatasetError, match=r"bad\.json:3: invalid JSON"):
        load_cases(path)
    (tmp_path / "list.json").write_text(json.dumps([VALID, {**VALID, "id": "2", "contexts": [1]}]))
    with pytest.raises(DatasetError, match=r"list\.json: \[1\]: contexts\[0\] must be a string"):
        load_cases(tmp_path / "list.json")


def test_parquet_errors_name_the_row(tmp_path: Path) -> None:
    rows = [VALID, {**VALID, "id": "2", "question": None}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "bad.parquet")
    with pytest.raises(DatasetError, match=r"bad\.parquet: row 1: missing question"):
        load_cases(tmp_path / "bad.parquet")
    (tmp_path / "garbage.parquet").write_bytes(b"PAR1 not really parquet PAR1")
    with pytest.raises(DatasetError, match=r"garbage\.parquet: cannot read as Parquet"):
        load_cases(tmp_path / "garbage.parquet")


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"missing\.jsonl: file not found"):
        load_cases(tmp_path / "missing.jsonl")
    with pytest.raises(DatasetError, match="is a directory"):
        load_cases(tmp_path)
    (tmp_path / "empty.jsonl").write_text("\n  \n")
    with pytest.raises(DatasetError, match=r"empty\.jsonl: no cases"):
        load_cases(tmp_path / "empty.jsonl")
    (tmp_path / "latin1.jsonl").write_bytes(
        json.dumps(VALID).encode() + b"\n" + b'{"q": "caf\xe9"}\n'
    )
    with pytest.raises(DatasetError, match=r"latin1\.jsonl:2: not UTF-8 text \(byte 0xe9"):
        load_cases(tmp_path / "latin1.jsonl")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DatasetError, match=r"deep\.json: invalid JSON: nested too deeply"):
        load_cases(tmp_path / "deep.json")
    (tmp_path / "scalar.json").write_text("42")
    with pytest.raises(DatasetError, match=r"scalar\.json: expected the SQuAD layout"):
        load_cases(tmp_path / "scalar.json")
    (tmp_path / "sq.json").write_text('{"data": []}')
    with pytest.raises(DatasetError, match="SQuAD JSON layout, not ragas"):
        load_cases(tmp_path / "sq.json", "ragas")


def test_write_jsonl_validates(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with pytest.raises(DatasetError, match=r"out\.jsonl: case 1: duplicate id 'q1'"):
        write_jsonl([CASES[0], CASES[0]], out)
    with pytest.raises(DatasetError, match=r"case 0: contexts is empty"):
        write_jsonl([Case("a", "q", [], [], {})], out)
    with pytest.raises(DatasetError, match=r"case 0: empty id"):
        write_jsonl([Case("", "q", ["c"], [], {})], out)
    assert not out.exists()
    # Values that are not JSON become plain JSON (metadata from Parquet may hold dates).
    metadata = {"day": datetime.date(2025, 3, 1), "nan": float("nan"), "t": (1, 2)}
    write_jsonl([Case("a", "q", ["c"], ["", "r", "r"], metadata)], out)
    assert load_cases(out) == [
        Case("a", "q", ["c"], ["r"], {"day": "2025-03-01", "nan": None, "t": [1, 2]})
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


# --------------------------------------------------------------------------- fuzzing


def _garbage_line(rng: random.Random) -> str:
    choices = [
        lambda: "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(1, 40))),
        lambda: json.dumps(rng.choice([None, 1, 1.5, "s", [], {}, [1, "a"], True])),
        lambda: json.dumps(_random_record(rng)),
        lambda: json.dumps(VALID)[: rng.randrange(1, 40)],
        lambda: "[" * rng.randrange(1, 5000),
        lambda: '{"question": "q", "contexts": ["c"], "references": [Infinity]}',
    ]
    return rng.choice(choices)()


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kinds = [None, True, 0, -1.5, "", "x", "[", '["a"]', "['a', 1]", "{}", '{"a": 1}']
    if depth < 2:
        kinds += [
            [_random_value(rng, depth + 1) for _ in range(rng.randrange(3))],
            {rng.choice(["text", "a", "answer_start"]): _random_value(rng, depth + 1)},
        ]
    return rng.choice(kinds)


def _random_record(rng: random.Random) -> dict[str, Any]:
    keys = [
        "id", "question", "contexts", "references", "metadata", "context", "answers",
        "is_impossible", "title", "plausible_answers", "ground_truth", "ground_truths",
        "reference", "answer", "user_input", "retrieved_contexts", "data", "paragraphs", "qas",
    ]  # fmt: skip
    return {k: _random_value(rng) for k in rng.sample(keys, rng.randrange(0, 8))}


def _expect_only_dataset_errors(path: Path, format: str | None = None) -> None:
    try:
        load_cases(path, format)
    except DatasetError:
        pass  # anything else propagates and fails the test with its traceback


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet", ".bin"])
def test_fuzz_random_bytes_only_raise_dataset_error(tmp_path: Path, suffix: str) -> None:
    rng = random.Random(f"bytes{suffix}")
    path = tmp_path / f"fuzz{suffix}"
    for i in range(150):
        size = rng.choice([0, 1, 4, 16, 200, 3000])
        data = bytes(rng.randrange(256) for _ in range(size))
        if i % 5 == 0:
            data = b"PAR1" + data + b"PAR1"
        path.write_bytes(data)
        _expect_only_dataset_errors(path)
        if i % 10 == 0:
            for fmt in FORMATS:
                _expect_only_dataset_errors(path, fmt)


@pytest.mark.parametrize("fmt", [None, *FORMATS])
def test_fuzz_garbage_lines_only_raise_dataset_error(tmp_path: Path, fmt: str | None) -> None:
    rng = random.Random(f"lines{fmt}")
    for i in range(200):
        lines = [json.dumps(VALID)] if rng.random() < 0.5 else []
        lines += [_garbage_line(rng) for _ in range(rng.randrange(1, 6))]
        for suffix in (".jsonl", ".json", ".csv"):
            path = tmp_path / f"f{i}{suffix}"
            path.write_text("\n".join(lines), encoding="utf-8")
            _expect_only_dataset_errors(path, fmt)


def test_fuzz_random_records_only_raise_dataset_error(tmp_path: Path) -> None:
    rng = random.Random(1234)
    for i in range(300):
        records = [_random_record(rng) for _ in range(rng.randrange(1, 4))]
        path = _write_jsonl(tmp_path / f"r{i}.jsonl", records)
        for fmt in (None, "squad", "ragas"):
            _expect_only_dataset_errors(path, fmt)
        squad = {"data": [{"title": _random_value(rng), "paragraphs": [_random_record(rng)]}]}
        if rng.random() < 0.5:
            squad["data"][0]["paragraphs"] = [{"context": "c", "qas": records}]
        (tmp_path / "s.json").write_text(json.dumps(squad))
        _expect_only_dataset_errors(tmp_path / "s.json")
        # The same records as CSV cells (stringified) and as Parquet columns (when possible).
        keys = sorted({k for r in records for k in r})
        _write_csv(tmp_path / "r.csv", keys, [[str(r.get(k, "")) for k in keys] for r in records])
        _expect_only_dataset_errors(tmp_path / "r.csv")
        try:
            table = pa.Table.from_pylist(records)
        except (pa.ArrowException, TypeError, ValueError):
            continue
        pq.write_table(table, tmp_path / "r.parquet")
        _expect_only_dataset_errors(tmp_path / "r.parquet")


# --------------------------------------------------------------------------- prompting

PROMPT_CASE = Case(
    id="p1",
    question="What is {{ 7 * 7 }} in the {% if x %}text{% endif %}?",
    contexts=["The first passage.", "The second passage."],
    references=["secret reference"],
    metadata={"topic": "math"},
)


def test_default_prompt() -> None:
    messages = render_messages(PROMPT_CASE)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == DEFAULT_SYSTEM
    user = messages[1]["content"]
    assert "[1] The first passage.\n\n[2] The second passage." in user
    # Dataset text is inserted literally, never evaluated as template code.
    assert "Question: What is {{ 7 * 7 }} in the {% if x %}text{% endif %}?" in user
    assert "secret reference" not in user
    assert "I don't know" in user
    # The system prompt asks for a short grounded answer and the exact abstention phrase,
    # which the abstention detector recognises.
    assert "only the numbered context passages" in DEFAULT_SYSTEM
    assert "not a full sentence" in DEFAULT_SYSTEM
    assert DEFAULT_SYSTEM.endswith("reply exactly: I don't know")
    assert is_abstention("I don't know")
    check_template()
    check_template(DEFAULT_TEMPLATE)


def test_custom_template_and_system() -> None:
    template = "{{ id }}/{{ metadata.topic }}: {{ question | upper }} ({{ contexts | length }})"
    messages = render_messages(PROMPT_CASE, template, system="Be brief.")
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": f"p1/math: {PROMPT_CASE.question.upper()} (2)"},
    ]
    assert render_messages(PROMPT_CASE, "{{ question }}", system="") == [
        {"role": "user", "content": PROMPT_CASE.question}
    ]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ ''.__class__.__mro__ }}", "refused by the sandbox"),
        ("{{ question.__class__ }}", "refused by the sandbox"),
        ("{{ '{0.__class__}'.format(question) }}", "refused by the sandbox"),
        ("{{ contexts.append('x') }}", "refused by the sandbox"),
        ("{{ metadata.update(a=1) }}", "refused by the sandbox"),
        ("{{ 'a' * 1000000000 }}", "refused by the sandbox"),
        ("{{ 9 ** 99999999 }}", "refused by the sandbox"),
        ("{% for i in range(10**9) %}{% endfor %}", "rendering failed"),
        ("{{ references }}", "unknown variable 'references'"),
        (
            "{{ questoin }}",
            "unknown variable 'questoin' (available: question, contexts, id, metadata)",
        ),
        ("line one\n{% if question %}\n{{ question }", "prompt template line 3: syntax error"),
        ("{{ metadata.missing }}", "undefined value"),
        (
            "x\n{{ 1 // 0 }}",
            "prompt template line 2 (case 'p1'): rendering failed: ZeroDivisionError",
        ),
        ("{% if false %}x{% endif %}  ", "renders an empty user message"),
    ],
)
def test_template_errors(template: str, message: str) -> None:
    with pytest.raises(DatasetError) as info:
        render_messages(PROMPT_CASE, template)
    assert message in str(info.value), str(info.value)
    assert str(info.value).startswith("prompt template")
    assert PROMPT_CASE.contexts == ["The first passage.", "The second passage."]
    assert PROMPT_CASE.metadata == {"topic": "math"}


def test_check_template_finds_unknown_names_in_untaken_branches() -> None:
    check_template(
        "{% for p in contexts %}{{ loop.index }} {{ p }}{% endfor %}{{ range(2) | list }}"
    )
    with pytest.raises(DatasetError, match="unknown variable 'answer'"):
        check_template("{% if false %}{{ answer }}{% endif %}")


# --------------------------------------------------------------------------- shipped knowledge base


@pytest.fixture(scope="module")
def kb() -> list[Case]:
    return load_cases(KB_DIR / "acme_kb.jsonl")


def test_kb_size_and_balance(kb: list[Case]) -> None:
    assert len(kb) == 48
    assert sum(c.answerable for c in kb) >= 36
    assert sum(not c.answerable for c in kb) >= 10
    assert [c.id for c in kb] == [f"acme-{i:03d}" for i in range(1, 49)]
    assert len({c.question for c in kb}) == 48


def test_kb_references_appear_verbatim_in_contexts(kb: list[Case]) -> None:
    missing = [
        (case.id, ref)
        for case in kb
        for ref in case.references
        if not any(ref.lower() in context.lower() for context in case.contexts)
    ]
    assert not missing, f"references not found in their contexts: {missing}"
    # Short extractive answers, not sentences.
    assert all(len(ref.split()) <= 10 for case in kb for ref in case.references)


def test_kb_contexts_and_metadata(kb: list[Case]) -> None:
    documents: dict[str, str] = {}
    for case in kb:
        assert 1 <= len(case.contexts) <= 3, case.id
        assert set(case.metadata) == {"doc_ids", "topic"}, case.id
        doc_ids = case.metadata["doc_ids"]
        assert len(doc_ids) == len(case.contexts) == len(set(doc_ids)), case.id
        assert isinstance(case.metadata["topic"], str) and case.metadata["topic"]
        for doc_id, text in zip(doc_ids, case.contexts, strict=True):
            assert documents.setdefault(doc_id, text) == text, f"{case.id}: {doc_id} text differs"
    assert 8 <= len(documents) <= 12
    for doc_id, text in documents.items():
        assert 80 <= len(text.split()) <= 200, doc_id
    # The abstention questions come with the documents a retriever would return.
    assert all(c.contexts for c in kb if not c.answerable)


def test_kb_suite_file_and_readme() -> None:
    from harness.suites.rag_qa import RagQaSuite

    data = yaml.safe_load((KB_DIR / "acme_kb.yaml").read_text())
    suite = RagQaSuite.model_validate(data, context={"base_dir": KB_DIR})
    assert suite.name == "rag-acme"
    assert len(suite.cases) == 48
    assert sum(not c.answerable for c in suite.cases) >= 10
    readme = (KB_DIR / "README.md").read_text()
    assert "CC0" in readme
    assert "written for this project" in readme


def test_kb_prompts_render(kb: list[Case]) -> None:
    for case in kb:
        user = render_messages(case)[1]["content"]
        assert all(f"[{i}] {text}" in user for i, text in enumerate(case.contexts, 1))
    assert re.search(r"\[1\] ", render_messages(kb[0])[1]["content"])
