"""Which providers failed a run, for the exit code and the last lines ``harness run`` prints.

A provider failed when it was unavailable (its server did not start or died, or its
warm-up could not connect), when its warm-up failed, or when none of its measured
requests succeeded. A failure of a provider marked ``optional`` is reported but
does not fail the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from harness.config.spec import RunSpec
from harness.report.summary import unpaired_providers


@dataclass(frozen=True)
class ProviderFailure:
    """One provider that failed, and why (the first line is the gist)."""

    provider: str
    optional: bool
    reason: str


def provider_failures(
    spec: RunSpec,
    rows: pd.DataFrame,
    unavailable: Mapping[str, str],
    warmup_errors: Mapping[str, str],
) -> list[ProviderFailure]:
    """Every provider of ``spec`` that failed, in config order."""
    empty = unpaired_providers(rows)
    out = []
    for p in spec.providers:
        if p.name in unavailable:
            reason = f"unavailable: {unavailable[p.name]}"
        elif p.name in warmup_errors:
            reason = f"its warm-up request failed ({warmup_errors[p.name]})"
        elif p.name in empty:
            reason = empty[p.name]
        else:
            continue
        out.append(ProviderFailure(p.name, p.optional, reason))
    return out
