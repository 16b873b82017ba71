"""Cost end to end: overrides priced per row, a budget that stops before overspending,
a dry run that sends nothing, and the model catalog audit."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.sim import SimProcess

from ..conftest import sim_requests

PRICED = "pricing: {input_per_mtok: 1000.0, output_per_mtok: 2000.0}"


def test_override_prices_every_row(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        f"""
        providers:
          - {{name: priced, model: openai/steady, api_base: "{sim.api_base}", {PRICED}}}
          - {{name: unpriced, model: openai/steady, api_base: "{sim.api_base}"}}
        suites:
          - {{name: s, kind: latency, prompts: ["one two three four"], requests: 3, max_tokens: 32}}
        """
    )
    root = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(root)
    priced = rows[rows["provider"] == "priced"]
    # 4 input tokens at $1000/M and 12 output tokens at $2000/M = $0.004 + $0.024.
    assert priced["cost_usd"].tolist() == pytest.approx([0.028] * 3, rel=1e-12)
    assert set(priced["price_source"]) == {"override"}
    unpriced = rows[rows["provider"] == "unpriced"]
    assert unpriced["cost_usd"].isna().all()
    summary = json.loads(
        CliRunner().invoke(main, ["summarize", str(root), "--format", "json"]).stdout
    )
    by_provider = {line["provider"]: line for line in summary}
    assert by_provider["priced"]["usd_per_1k_requests"] == pytest.approx(28.0)
    assert by_provider["unpriced"]["usd_per_1k_requests"] is None
    manifest = json.loads(next(root.glob("*/_manifest.json")).read_text())
    assert manifest["providers"]["priced"]["price_source"] == "override"
    assert manifest["price_table"]["entries"] > 1000
    assert len(manifest["price_table"]["sha256"]) == 64


def test_budget_stops_before_the_cap_and_keeps_every_row(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    # Worst case per request: ~11 input tokens (local count) at $1000/M plus 32
    # output tokens at $2000/M ≈ $0.075; real cost $0.028. A $0.5 cap allows
    # ~15 real requests but never a state where spent + in flight could exceed it.
    config = write_config(
        f"""
        run: {{name: capped, budget_usd: 0.5, concurrency: 4}}
        providers:
          - {{name: priced, model: openai/steady, api_base: "{sim.api_base}", {PRICED}}}
        suites:
          - {{name: s, kind: latency, prompts: ["one two three four"], requests: 100, max_tokens: 32}}
        """
    )
    root = tmp_path / "out"
    before = sim_requests(sim)
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(root)
    sent = sim_requests(sim) - before - 1  # minus the warm-up request
    assert 0 < len(rows) < 100
    assert sent == len(rows)  # nothing was sent that has no row
    assert rows["cost_usd"].sum() <= 0.5
    assert (rows["status"] == "ok").all()
    manifest = json.loads(next(root.glob("*/_manifest.json")).read_text())
    assert manifest["stopped_reason"].startswith("budget:")
    # The warm-up request (same prompt, same $0.028) is paid for and counted too.
    assert manifest["budget"]["spent_usd"] == pytest.approx(rows["cost_usd"].sum() + 0.028)
    assert manifest["budget"]["spent_usd"] <= 0.5
    assert manifest["not_sent"] == 100 - len(rows)
    assert "stopped" in result.output or "budget" in result.stderr


def test_dry_run_prints_the_plan_and_sends_nothing(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        f"""
        providers:
          - {{name: priced, model: openai/steady, api_base: "{sim.api_base}", {PRICED}}}
          - {{name: catalog, model: openai/gpt-4o-mini, api_base: "{sim.api_base}"}}
        suites:
          - {{name: s, kind: latency, prompts: ["one two three four"], requests: 10, max_tokens: 32}}
        """
    )
    before = sim_requests(sim)
    result = CliRunner().invoke(
        main, ["run", str(config), "--dry-run", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 0, result.output
    assert sim_requests(sim) == before
    assert not (tmp_path / "r").exists()
    assert "20 requests; estimated cost $" in result.output
    assert "litellm:gpt-4o-mini" in result.output
    assert "Nothing was sent." in result.output


def test_models_audit_exits_nonzero_on_deprecation() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["models", "deepseek/deepseek-chat", "--format", "json"])
    assert result.exit_code == 0
    [info] = json.loads(result.stdout)
    assert info["deprecation_date"] == "2026-07-24"
    assert info["status"] in ("deprecated", "deprecating", "ok")
    failing = runner.invoke(main, ["models", "deepseek/deepseek-chat", "--within", "90"])
    assert failing.exit_code == 1
    assert "deprecated" in failing.stderr
    unknown = runner.invoke(main, ["models", "no-such/model", "--within", "90", "--format", "csv"])
    assert unknown.exit_code == 0
    assert "unknown" in unknown.stdout


def test_cost_suite_reports_comparable_units(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        f"""
        providers:
          - {{name: priced, model: openai/steady, api_base: "{sim.api_base}", {PRICED}}}
          - name: per-second
            model: openai/fast
            api_base: "{sim.api_base}"
            pricing: {{per_second: 0.5}}
        suites:
          - {Path(__file__).resolve().parents[2] / "suites" / "cost" / "tasks.yaml"}
        """
    )
    root = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(root)
    assert set(rows["suite_kind"]) == {"cost"}
    assert len(rows) == 2 * 8
    priced = rows[rows["provider"] == "priced"]
    by_second = rows[rows["provider"] == "per-second"]
    # per_second pricing: cost = 0.5 $/s × the request's E2E time.
    assert by_second["cost_usd"].tolist() == pytest.approx((by_second["e2e_s"] * 0.5).tolist())
    summary = json.loads(
        CliRunner().invoke(main, ["summarize", str(root), "--format", "json"]).stdout
    )
    line = next(s for s in summary if s["provider"] == "priced")
    total = priced["cost_usd"].sum()
    chars = priced["input_chars"].sum() + priced["output_chars"].sum()
    assert line["usd_per_task"] == pytest.approx(total / 8)
    assert line["usd_per_1k_chars"] == pytest.approx(total / chars * 1000)
    assert line["blended_usd_per_mtok"] == pytest.approx((3 * 1000 + 2000) / 4)
    assert line["chars_per_input_token"] > 1


def test_a_run_warns_about_deprecated_models_at_start(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        f"""
        providers:
          - {{name: old, model: openai/gpt-4o-mini, api_base: "{sim.api_base}"}}
        suites:
          - {{name: s, kind: latency, prompts: ["hi"], requests: 1, max_tokens: 4}}
        """
    )
    root = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    # gpt-4o-mini: deprecation 2027-01-14 in the bundled table, within 90 days of 2026-11-25+.
    from datetime import UTC, date, datetime

    days_left = (date(2027, 1, 14) - datetime.now(UTC).date()).days
    manifest = json.loads(next(root.glob("*/_manifest.json")).read_text())
    if days_left <= 90:
        assert "openai/gpt-4o-mini is" in result.stderr
        assert "successor: gpt-6-luna" in result.stderr
        assert manifest["model_warnings"]
    else:
        assert manifest["model_warnings"] == []
