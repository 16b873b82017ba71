"""Length distributions of synthetic prompts and outputs (harness.suites.lengths)."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.cost.tokens import count_tokens
from harness.suites.latency import LatencySuite, plan
from harness.suites.lengths import LengthDist, word_prompt


def dist(**kw: Any) -> LengthDist:
    return LengthDist.model_validate(kw)


def test_fixed_and_uniform() -> None:
    assert dist(dist="fixed", value=7).sample(4, random.Random(0)) == [7, 7, 7, 7]
    draws = dist(dist="uniform", min=10, max=20).sample(4000, random.Random(1))
    assert min(draws) == 10 and max(draws) == 20  # both ends included
    # Uniform on 10..20: mean (10 + 20) / 2 = 15, sd sqrt((11² - 1)/12) = sqrt(10) ≈ 3.16.
    assert np.mean(draws) == pytest.approx(15, abs=0.2)
    assert np.std(draws) == pytest.approx(10**0.5, rel=0.05)


def test_normal_is_rounded_and_clipped() -> None:
    draws = dist(dist="normal", mean=100, std=10).sample(4000, random.Random(2))
    assert all(isinstance(d, int) for d in draws)
    assert np.mean(draws) == pytest.approx(100, abs=1)
    assert np.std(draws) == pytest.approx(10, rel=0.05)
    clipped = dist(dist="normal", mean=5, std=10, max=12).sample(2000, random.Random(3))
    assert min(clipped) == 1 and max(clipped) == 12  # never below 1, never above max


def test_sampled_from_files(tmp_path: Path) -> None:
    lines = tmp_path / "lengths.txt"
    lines.write_text("10\n20\n\n30\n")
    draws = dist(dist="file", path=str(lines)).sample(3000, random.Random(4))
    counts = Counter(draws)
    assert set(counts) == {10, 20, 30}
    assert all(c == pytest.approx(1000, rel=0.1) for c in counts.values())
    table = tmp_path / "lengths.csv"
    table.write_text("id,input\na,5\nb,6\n")
    assert set(dist(dist="file", path=str(table), column="input").sample(50, random.Random(0))) == {
        5,
        6,
    }
    jsonl = tmp_path / "lengths.jsonl"
    jsonl.write_text('{"n": 3}\n{"n": 4}\n')
    assert set(dist(dist="file", path=str(jsonl), column="n").sample(50, random.Random(0))) == {
        3,
        4,
    }


def test_a_bad_length_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("input\n5\nlots\n")
    with pytest.raises(ValueError, match=r"bad.csv:3: 'lots' is not a token length"):
        dist(dist="file", path=str(bad), column="input")
    with pytest.raises(ValueError, match="dist uniform needs max"):
        dist(dist="uniform", min=3)
    with pytest.raises(ValueError, match="min \\(9\\) is above max \\(3\\)"):
        dist(dist="uniform", min=9, max=3)


def test_word_prompts_have_exact_lengths_and_share_prefixes() -> None:
    for n in (1, 17, 512):
        assert count_tokens(word_prompt(n, 5)) == n
    long, short = word_prompt(300, 9), word_prompt(100, 9)
    assert long.startswith(short)
    assert not word_prompt(100, 10).startswith(short[:40])


def test_latency_suite_draws_input_and_output_lengths() -> None:
    suite = LatencySuite.model_validate(
        {
            "name": "d",
            "requests": 40,
            "synthetic": {
                "input_tokens": {"dist": "uniform", "min": 5, "max": 9},
                "output_tokens": {"dist": "uniform", "min": 2, "max": 6},
                "count": 20,
                "seed": 3,
            },
            "load": {"pattern": "rate", "levels": [1, 2]},
        }
    )
    requests = list(plan(suite, "p"))
    inputs = {r.case_id: count_tokens(r.messages[-1]["content"]) for r in requests}
    assert len(inputs) == 20 and all(5 <= n <= 9 for n in inputs.values())
    assert len(set(inputs.values())) > 1  # drawn, not one length
    outputs = [r.max_tokens for r in requests]
    assert all(2 <= n <= 6 for n in outputs) and len(set(outputs)) > 1
    # The same draws at every load level: the levels compare like with like.
    assert outputs[:40] == outputs[40:]


def test_a_length_that_could_exceed_the_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="input_tokens can reach 300000"):
        LatencySuite.model_validate(
            {
                "name": "d",
                "synthetic": {"input_tokens": {"dist": "uniform", "min": 1, "max": 300000}},
            }
        )


def test_length_files_resolve_relative_to_the_suite(write_config) -> None:  # type: ignore[no-untyped-def]
    from harness.config.spec import load_config
    from harness.errors import ConfigError

    path = write_config(
        """
        providers: [{name: p, simulate: {}}]
        suites:
          - name: s
            kind: latency
            synthetic:
              input_tokens: {dist: file, path: lengths.txt}
        """
    )
    with pytest.raises(ConfigError, match=r"synthetic.input_tokens.path: length file not found"):
        load_config(path)
    (path.parent / "lengths.txt").write_text("4\n")
    spec = load_config(path)
    assert spec.suites[0].synthetic.input_lengths() == [4] * 8  # type: ignore[attr-defined]
