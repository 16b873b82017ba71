"""The capacity search's decisions (harness.run.capacity) against hand-worked sequences."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.errors import ConfigError
from harness.run.capacity import Level, Search, SearchSettings, meets_slo, sweep_levels, wilson


def settings(**kw: object) -> SearchSettings:
    base: dict[str, object] = {
        "search": "rate",
        "arrivals": "poisson",
        "burstiness": 1.0,
        "slo": {"ttft_ms": 100.0},
        "goodput": 0.95,
        "start": 1.0,
        "maximum": 200.0,
        "resolution": 0.05,
        "growth": 2.0,
        "seed": 0,
    }
    base.update(kw)
    return SearchSettings(**base)  # type: ignore[arg-type]


def walk(search: Search, capacity: float) -> list[float]:
    """Levels tried against an oracle that passes every level <= capacity."""
    tried = []
    while (level := search.next_level()) is not None:
        tried.append(level)
        search.observe(level, level <= capacity)
    return tried


def test_rate_search_doubles_then_bisects_to_the_resolution() -> None:
    search = Search(settings())
    # Doubling: 1..32 pass, 64 fails; bisect (32, 64) → 48 F, (32, 48) → 40 F,
    # (32, 40) → 36 P, (36, 40) → 38 F, (36, 38) → 37 P; (38 - 37) / 37 = 2.7 % <= 5 %.
    assert walk(search, 37.3) == [1, 2, 4, 8, 16, 32, 64, 48, 40, 36, 38, 37]
    assert search.low == 37 and search.high == 38 and search.converged()


def test_concurrency_search_stops_at_adjacent_whole_numbers() -> None:
    search = Search(settings(search="concurrency", maximum=64))
    # 1, 2, 4, 8 pass, 16 fails; (8, 16) → 12 F, (8, 12) → 10 P, (10, 12) → 11 P; 12 - 11 = 1.
    assert walk(search, 11) == [1, 2, 4, 8, 16, 12, 10, 11]
    assert search.low == 11


def test_a_failing_start_steps_down() -> None:
    search = Search(settings(start=1.0))
    tried = walk(search, 0.3)
    # 1 F, 0.5 F, 0.25 P, then bisection within (0.25, 0.5).
    assert tried[:3] == [1, 0.5, 0.25]
    assert search.low is not None and 0.27 <= search.low <= 0.3


def test_a_maximum_that_passes_ends_the_search_there() -> None:
    search = Search(settings(maximum=100))
    assert walk(search, 1000) == [1, 2, 4, 8, 16, 32, 64, 100]
    assert search.low == 100 and search.high is None


def test_nothing_passes() -> None:
    search = Search(settings(search="concurrency", start=1))
    assert walk(search, 0) == [1]
    assert search.low is None


def test_sweep_of_the_same_resolution() -> None:
    # 1·1.05^k <= 200: k <= log(200)/log(1.05) = 5.2983/0.04879 = 108.6 → 109 levels.
    assert sweep_levels(settings()) == 109
    # Whole numbers 1..8 at 50 %: 1, 1.5→2, 2.25→2, 3.4→3, 5.1→5, 7.6→8: {1, 2, 3, 5, 8}.
    assert sweep_levels(settings(search="concurrency", maximum=8, resolution=0.5)) == 5


def test_the_slo_is_the_users() -> None:
    slo = {"ttft_ms": 120.0, "itl_ms": 20.0}
    ok = {"status": "ok", "queue_wait_s": 0.01, "ttft_s": 0.1, "itl_s": None}
    assert meets_slo(ok, slo)  # 10 + 100 = 110 ms; no ITL: not applicable
    assert not meets_slo({**ok, "queue_wait_s": 0.05}, slo)  # 50 + 100 = 150 ms
    assert not meets_slo({**ok, "itl_s": 0.021}, slo)
    assert not meets_slo({"status": "error", "error_type": "rate_limited"}, slo)
    assert not meets_slo({"status": "ok", "ttft_s": None}, slo)


def test_a_level_is_decided_once_it_cannot_pass() -> None:
    # 20 measured at 95 %: floor(0.05 × 20) = 1 miss allowed; the second decides it.
    level = Level(10, "capacity=10", planned=20, allowed_misses=1)
    slo = {"ttft_ms": 100.0}
    good = {"status": "ok", "ttft_s": 0.05, "queue_wait_s": 0.0}
    bad = {"status": "error", "error_type": "rate_limited"}
    level.watch({**good, "warmup": True}, slo)
    level.watch(good, slo)
    level.watch(bad, slo)
    assert not level.decided_over and level.rate_limited == 1 and level.warmups == 1
    level.watch(bad, slo)
    assert level.decided_over and not level.passed(0.95)


def test_wilson_interval() -> None:
    # 19 of 20, z = 1.96: centre (0.95 + 1.96²/40) / (1 + 1.96²/20) = 1.04604/1.19208 = 0.87749;
    # half-width 1.96·sqrt(0.95·0.05/20 + 1.96²/1600) / 1.19208 = 1.96·0.069109/1.19208
    # = 0.11363 → [0.7639, 0.9911].
    low, high = wilson(19, 20)
    assert low == pytest.approx(0.7639, abs=1e-3) and high == pytest.approx(0.9911, abs=1e-3)
    assert wilson(20, 20)[1] == 1.0 and wilson(0, 0) == (None, None)


CONFIG = """
run: {{workers: {workers}}}
providers: [{{name: p, simulate: {{}}}}]
suites:
  - name: cap
    kind: latency
    prompts: [hi]
    requests: 20
    load: {{pattern: capacity, slo: {{ttft_ms: 200}}, max_rate: 50, goodput: 0.95}}
"""


def test_workers_are_refused_naming_the_key(write_config) -> None:  # type: ignore[no-untyped-def]
    from harness.config.spec import load_config

    path = write_config(CONFIG.format(workers=2))
    with pytest.raises(ConfigError, match=r"config.yaml:2: run.workers: 2 workers cannot run"):
        load_config(path)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2


def test_validate_and_dry_run_say_the_count_is_variable(write_config) -> None:  # type: ignore[no-untyped-def]
    path = write_config(CONFIG.format(workers=1))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "a capacity search sends a variable number of requests" in result.output
    dry = CliRunner().invoke(main, ["run", str(path), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "per level (capacity search: variable)" in dry.output
    assert "variable number of requests" in dry.output


@pytest.mark.parametrize(
    ("load", "message"),
    [
        ({"pattern": "capacity", "max_rate": 5}, "needs slo"),
        ({"pattern": "capacity", "slo": {"ttft_ms": 1}}, "needs max_rate"),
        (
            {"pattern": "capacity", "search": "concurrency", "slo": {"ttft_ms": 1}},
            "needs max_concurrency",
        ),
        ({"pattern": "capacity", "slo": {}, "max_rate": 5}, "needs slo"),
        (
            {"pattern": "capacity", "slo": {"ttft_ms": 1}, "max_rate": 5, "duration_s": 3},
            "bounded by its requests",
        ),
    ],
)
def test_bad_capacity_config(load: dict[str, object], message: str) -> None:
    from harness.suites.latency import LatencySuite

    with pytest.raises(ValueError, match=message):
        LatencySuite.model_validate({"name": "s", "prompts": ["hi"], "load": load})
