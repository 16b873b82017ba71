"""Tool and extraction datasets: the shipped ones load, bad input is refused naming file and
line (exit 2 from the CLI), and BFCL's format imports into cases the checker can score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.scoring.tool_calls import score_tool_calls
from harness.suites.datasets import DatasetError
from harness.suites.tool_data import (
    import_bfcl,
    load_extraction_cases,
    load_tool_cases,
    load_tools_file,
)

from ..conftest import REPO, TEST_DATA

BFCL = TEST_DATA / "bfcl"
SUITES = REPO / "suites"


def test_shipped_tool_cases_load() -> None:
    catalog = load_tools_file(SUITES / "tool_call" / "northwind_tools.json")
    cases = load_tool_cases(SUITES / "tool_call" / "northwind_tools.jsonl", catalog)
    assert len(catalog) == 10 and len(cases) == 40
    assert len({c.id for c in cases}) == 40
    no_call = [c for c in cases if not c.expected]
    parallel = [c for c in cases if len(c.expected) > 1]
    assert len(no_call) == 8 and len(parallel) == 6
    # A case without "tools" is offered the whole API.
    assert len(cases[0].tools) == 10


def test_shipped_extraction_cases_load() -> None:
    cases = load_extraction_cases(SUITES / "structured" / "northwind_extract.jsonl")
    assert len(cases) == 30 and len({c.id for c in cases}) == 30


TOOL = {
    "type": "function",
    "function": {
        "name": "f",
        "parameters": {
            "type": "object",
            "properties": {"n": {"type": "integer"}},
            "required": ["n"],
        },
    },
}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "not JSON"),
        (json.dumps({"id": "a", "question": "q", "tools": [TOOL]}), "no 'expected' calls"),
        (
            json.dumps({"question": "q", "tools": [TOOL], "expected": [{"name": "g"}]}),
            "'g' is not one of the case's tools",
        ),
        (
            json.dumps(
                {
                    "question": "q",
                    "tools": [TOOL],
                    "expected": [{"name": "f", "arguments": {"m": 1}}],
                }
            ),
            "'f' has no parameter 'm'",
        ),
        (
            json.dumps(
                {
                    "question": "q",
                    "tools": [TOOL],
                    "expected": [{"name": "f", "arguments": {"n": "1"}}],
                }
            ),
            "n='1' does not fit its schema",
        ),
        (json.dumps({"question": "q", "tools": ["f"], "expected": []}), "not in the tools_file"),
        (
            json.dumps(
                {
                    "question": "q",
                    "tools": [{"type": "function", "function": {"name": "a.b"}}],
                    "expected": [],
                }
            ),
            "tool name 'a.b' must match",
        ),
        (
            json.dumps({"question": "q", "tools": [TOOL], "expected": [], "colour": 1}),
            "unknown keys ['colour']",
        ),
    ],
)
def test_bad_tool_cases_name_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(
        json.dumps({"id": "ok", "question": "q", "tools": [TOOL], "expected": []})
        + "\n"
        + line
        + "\n"
    )
    with pytest.raises(DatasetError) as err:
        load_tool_cases(path)
    assert f"{path}:2:" in str(err.value) and problem in str(err.value)


def test_bad_extraction_case_and_cli_exit_code(tmp_path: Path, write_config) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "x.jsonl"
    data.write_text(
        json.dumps(
            {
                "id": "x",
                "prompt": "p",
                "schema": {"type": "object", "properties": {"a": {"type": "integer"}}},
                "expected": {"a": "one"},
            }
        )
        + "\n"
    )
    with pytest.raises(DatasetError, match=r"x\.jsonl:1: 'expected' does not fit 'schema'"):
        load_extraction_cases(data)
    config = write_config(
        f"""
        providers: [{{name: s, simulate: {{}}}}]
        suites: [{{name: x, kind: structured, dataset: {data}}}]
        """
    )
    result = CliRunner().invoke(main, ["validate", str(config)])
    assert result.exit_code == 2
    assert "x.jsonl:1: 'expected' does not fit 'schema'" in result.output


def test_bfcl_import_and_ground_truth_scores_exact(tmp_path: Path) -> None:
    dest = tmp_path / "bfcl.jsonl"
    result = CliRunner().invoke(
        main,
        [
            "datasets",
            "import",
            "bfcl",
            str(BFCL / "BFCL_v4_sample.json"),
            str(dest),
            "--answers",
            str(BFCL / "possible_answer" / "BFCL_v4_sample.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"{dest}: 7 cases" in result.output
    cases = {c.id: c for c in load_tool_cases(dest)}
    assert list(cases) == [
        "simple_python_0",
        "simple_python_1",
        "simple_python_2",
        "simple_python_89",
        "parallel_0",
        "parallel_2",
        "multiple_8",
    ]
    triangle = cases["simple_python_0"]
    # BFCL "dict" → JSON Schema "object"; "unit": ["units", ""] → optional, one value.
    params = triangle.tools[0]["function"]["parameters"]
    assert params["type"] == "object" and params["required"] == ["base", "height"]
    assert triangle.expected == [
        {
            "name": "calculate_triangle_area",
            "arguments": {
                "base": 10,
                "height": 5,
                "unit": {"$one_of": ["units"], "$optional": True},
            },
        }
    ]
    assert cases["simple_python_1"].expected[0]["name"] == "math_factorial"  # dots → "_"
    assert triangle.metadata == {"source": "bfcl", "category": "simple_python"}

    def score(case_id: str, *calls: tuple[str, dict[str, object]]) -> tuple[float, float]:
        case = cases[case_id]
        made = [{"name": n, "arguments": json.dumps(a)} for n, a in calls]
        s = score_tool_calls(made, case.tools, case.expected)
        return s.valid, s.exact

    assert score("simple_python_0", ("calculate_triangle_area", {"base": 10, "height": 5})) == (
        1,
        1,
    )
    assert score(
        "simple_python_0", ("calculate_triangle_area", {"base": 10, "height": 5, "unit": "Units"})
    ) == (1, 1)
    assert score("simple_python_0", ("calculate_triangle_area", {"base": 10, "height": 6})) == (
        1,
        0,
    )
    # Nested acceptable values inside a dict argument (BFCL's "conditions", "budget").
    fetch = {
        "database_name": "StudentDB",
        "table_name": "students",
        "conditions": {"department": "science", "school": "Bluebird HS"},
    }
    assert score("simple_python_89", ("db_fetch_records", fetch)) == (1, 1)
    fetch["conditions"] = {"department": "Arts", "school": "Bluebird HS"}
    assert score("simple_python_89", ("db_fetch_records", fetch)) == (1, 0)
    villa = {
        "location": "San Diego",
        "propertyType": "villa",
        "bedrooms": 3,
        "budget": {"min": 300000, "max": 400000.0},
    }
    assert score("multiple_8", ("realestate_find_properties", villa)) == (1, 1)
    # Parallel, in the other order; "resistivity": ["copper", ""] may be left out.
    assert score(
        "parallel_2",
        ("calculate_resistance", {"length": 5, "area": 0.01, "resistivity": "aluminum"}),
        ("calculate_resistance", {"length": 5, "area": 0.01}),
    ) == (1, 1)


def test_bfcl_irrelevance_needs_no_answers_and_others_do(tmp_path: Path) -> None:
    n, skipped = import_bfcl(BFCL / "BFCL_v4_irrelevance_sample.json", tmp_path / "irr.jsonl")
    assert (n, skipped) == (2, [])
    cases = load_tool_cases(tmp_path / "irr.jsonl")
    assert all(c.expected == [] for c in cases)
    with pytest.raises(DatasetError, match="no ground truth for 'simple_python_0'"):
        import_bfcl(BFCL / "BFCL_v4_sample.json", tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()  # nothing written on error
    result = CliRunner().invoke(
        main,
        [
            "datasets",
            "import",
            "csv",
            str(BFCL / "BFCL_v4_sample.json"),
            str(tmp_path / "y"),
            "--answers",
            str(BFCL / "BFCL_v4_sample.json"),
        ],
    )
    assert result.exit_code == 2 and "--answers is for the bfcl format only" in result.output


def test_workloads_config_plans_every_case() -> None:
    from harness.config.spec import load_config
    from harness.run.plan import plan_count

    count = plan_count(load_config(REPO / "configs" / "workloads.yaml"))
    # Per provider: 40 tool cases + 30 extraction tasks, each also sent free-form: 100.
    assert count.requests == 100 * count.providers
    assert count.providers in (3, 4)  # SmolLM2 is optional
