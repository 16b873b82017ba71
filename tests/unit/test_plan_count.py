"""``validate``'s count: the run's own plan, and a sentence on what it leaves out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.config.spec import load_config
from harness.run.plan import build_plan, plan_count


def test_count_names_level_warmups_time_bounds_and_worker_warmups(
    write_config: Callable[..., Path],
) -> None:
    config = write_config(
        """
        run: {warmup_requests: 1, workers: 2}
        providers:
          - {name: a, simulate: {ttft_ms: 5}}
          - {name: b, simulate: {ttft_ms: 5}}
        suites:
          - name: swept
            kind: latency
            prompts: ["hi"]
            requests: 5
            load: {pattern: concurrency, levels: [1, 2], warmup: 1}
          - name: timed
            kind: latency
            prompts: ["hi"]
            requests: 3
            load: {pattern: rate, levels: [10], duration_s: 0.5}
        """
    )
    spec = load_config(config)
    count = plan_count(spec)
    # swept: 2 levels × (1 warm-up + 5) = 12 per provider; timed: 3 once through.
    # (12 + 3) × 2 providers = 30, of which 2 levels × 1 × 2 providers = 4 warm-ups.
    assert count.requests == 30 == sum(len(p.requests) for p in build_plan(spec))
    assert count.level_warmups == 4
    assert count.describe() == (
        "30 requests planned (4 of them load-level warm-ups, kept out of the stats)"
        " (time-bounded phases counted once through; they send for their duration);"
        " not counted: 1 unrecorded warm-up request per provider per worker process"
    )


def test_nothing_to_say_when_nothing_is_left_out(write_config: Callable[..., Path]) -> None:
    config = write_config(
        """
        run: {warmup_requests: 0}
        providers:
          - {name: a, simulate: {ttft_ms: 5}}
        suites:
          - {name: s, kind: latency, prompts: ["hi"], requests: 7}
        """
    )
    assert plan_count(load_config(config)).describe() == "7 requests planned"
