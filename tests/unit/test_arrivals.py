"""Arrival schedules (harness.run.arrivals) against hand-computed offsets and moments."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from harness.errors import ConfigError
from harness.run.arrivals import ramp_time, schedule
from harness.suites.latency import LatencySuite


def first(n: int, it: object) -> list[float]:
    return list(itertools.islice(it, n))  # type: ignore[call-overload]


def test_constant_rate_ramp_matches_the_inverse_of_the_cumulative_rate() -> None:
    # r0 = 2, r1 = 6 over T = 2 s: Λ(t) = 2t + (6 - 2)t²/(2·2) = 2t + t², Λ(2) = 8.
    # Arrival i is at Λ(t) = i: t = -1 + sqrt(1 + i): i = 3 → 1 s, i = 8 → 2 s;
    # after T the rate is 6: i = 9 → 2 + 1/6 s.
    got = first(10, schedule("rate", 2, 0, ramp_to=6, duration_s=2))
    assert got[0] == 0.0
    assert got[3] == pytest.approx(1.0)
    assert got[8] == pytest.approx(2.0)
    assert got[9] == pytest.approx(2 + 1 / 6)
    assert got[1] == pytest.approx(math.sqrt(2) - 1)


def test_falling_ramp() -> None:
    # r0 = 6, r1 = 2 over 2 s: Λ(t) = 6t - t². Λ(t) = 5 → t² - 6t + 5 = 0 → t = 1;
    # Λ(2) = 12 - 4 = 8 → arrival 8 at 2 s.
    assert ramp_time(5, 6, 2, 2) == pytest.approx(1.0)
    assert ramp_time(8, 6, 2, 2) == pytest.approx(2.0)
    assert ramp_time(0, 6, 2, 2) == 0.0


def test_ramp_from_zero() -> None:
    # r0 = 0, r1 = 4 over 1 s: Λ(t) = 2t²; Λ(t) = 1 at t = sqrt(1/2).
    assert ramp_time(1, 0, 4, 1) == pytest.approx(math.sqrt(0.5))


def test_flat_ramp_is_the_constant_rate() -> None:
    got = first(5, schedule("rate", 4, 0, ramp_to=4, duration_s=10))
    assert got == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])


def test_plain_poisson_keeps_the_draws_it_always_made() -> None:
    # The scheduler's Poisson arrivals before load shapes: t += expovariate(rate).
    rng, t, old = random.Random(7), 0.0, []
    for _ in range(50):
        old.append(t)
        t += rng.expovariate(12.5)
    assert first(50, schedule("poisson", 12.5, 7)) == old


@pytest.mark.parametrize(("pattern", "k"), [("gamma", 0.25), ("gamma", 4.0), ("poisson", 0.5)])
def test_gamma_gaps_keep_the_rate_and_have_cv_one_over_sqrt_shape(pattern: str, k: float) -> None:
    # Gamma(shape k, scale 1/(k·rate)): mean 1/rate = 0.1 s; CV = 1/sqrt(k):
    # k = 0.25 → 2, k = 4 → 0.5, k = 0.5 → 1.414.
    offsets = np.array(first(40_001, schedule(pattern, 10, 3, burstiness=k)))
    gaps = np.diff(offsets)
    assert gaps.mean() == pytest.approx(0.1, rel=0.05)
    assert gaps.std() / gaps.mean() == pytest.approx(1 / math.sqrt(k), rel=0.05)


def test_poisson_cv_is_one() -> None:
    gaps = np.diff(first(40_001, schedule("poisson", 10, 3)))
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.05)


def test_poisson_ramp_has_the_ramps_expected_counts() -> None:
    # r0 = 10, r1 = 30 over 10 s: Λ(t) = 10t + t²; E[arrivals before 5 s] = Λ(5) = 75,
    # before 10 s Λ(10) = 200. Averaged over 40 seeds (sd of the mean sqrt(200/40) ≈ 2.2).
    before5, before10 = [], []
    for seed in range(40):
        offs = np.array(first(400, schedule("poisson", 10, seed, ramp_to=30, duration_s=10)))
        before5.append((offs < 5).sum())
        before10.append((offs < 10).sum())
    assert np.mean(before5) == pytest.approx(75, rel=0.05)
    assert np.mean(before10) == pytest.approx(200, rel=0.05)


def test_seeded_and_reproducible() -> None:
    a = first(20, schedule("gamma", 5, 1, burstiness=0.3))
    assert a == first(20, schedule("gamma", 5, 1, burstiness=0.3))
    assert a != first(20, schedule("gamma", 5, 2, burstiness=0.3))


def suite(load: dict[str, object]) -> LatencySuite:
    return LatencySuite.model_validate({"name": "s", "prompts": ["hi"], "load": load})


def test_labels_name_burstiness_and_ramps() -> None:
    phases = suite({"pattern": "gamma", "levels": [5, 10], "burstiness": 0.5}).phases()
    assert [p.label for p in phases] == ["gamma=5,burst=0.5", "gamma=10,burst=0.5"]
    assert phases[0].burstiness == 0.5
    ramp = suite({"pattern": "poisson", "ramp": {"from": 2, "to": 20}, "duration_s": 30}).phases()
    assert [(p.label, p.level, p.ramp_to, p.duration_s) for p in ramp] == [
        ("poisson=2..20", 2, 20, 30)
    ]
    # The resolved config (the manifest's) keeps the user's key, "from".
    dumped = suite({"pattern": "rate", "ramp": {"from": 1, "to": 2}, "duration_s": 5})
    assert dumped.model_dump(mode="json")["load"]["ramp"] == {"from": 1.0, "to": 2.0}


@pytest.mark.parametrize(
    ("load", "message"),
    [
        ({"pattern": "rate", "ramp": {"from": 1, "to": 2}}, "a ramp needs duration_s"),
        ({"pattern": "rate", "levels": [1], "burstiness": 2}, "burstiness applies"),
        (
            {"pattern": "rate", "levels": [1], "ramp": {"from": 1, "to": 2}, "duration_s": 1},
            "levels do not apply",
        ),
        ({"pattern": "concurrency", "ramp": {"from": 1, "to": 2}, "duration_s": 1}, "needs levels"),
        ({"pattern": "gamma"}, "needs levels"),
    ],
)
def test_bad_shapes_are_config_errors(load: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        suite(load)


def test_a_bad_shape_names_file_key_and_line(write_config) -> None:  # type: ignore[no-untyped-def]
    from harness.config.spec import load_config

    path = write_config(
        """
        providers: [{name: p, simulate: {}}]
        suites:
          - name: s
            kind: latency
            prompts: [hi]
            load:
              pattern: rate
              levels: [1]
              burstiness: 0.5
        """
    )
    with pytest.raises(ConfigError, match=r"config.yaml:\d+: suites\[0\].load: burstiness"):
        load_config(path)
