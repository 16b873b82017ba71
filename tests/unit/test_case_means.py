"""The summary's per-case score means keyed by case codes (``summary._case_means``) are
``per_case``'s, value for value and in its order: sorted case ids, a missing id last,
cases without a score left out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.report.summary import _case_means, _sorted_case_codes
from harness.scoring import per_case


def test_case_means_are_per_case_means() -> None:
    rng = np.random.default_rng(0)
    n = 500
    ids = rng.choice(["b", "a", "c10", "c2", None, "Z", "é"], n)
    group = pd.DataFrame(
        {
            "case_id": pd.Series(ids, dtype="str"),
            "provider": pd.Series(["p"] * n, dtype="str"),
            "f1": np.where(rng.random(n) < 0.3, np.nan, rng.random(n)),
        }
    )
    group.loc[group["case_id"] == "Z", "f1"] = np.nan  # a case with no score at all
    expected = per_case(group, "f1", "provider")
    # a, b, c10, c2, é, then the missing id; Z has no score: 6 cases
    assert expected.index.tolist()[:5] == ["a", "b", "c10", "c2", "é"]
    assert len(expected) == 6
    got = _case_means(group["f1"], _sorted_case_codes(group))
    np.testing.assert_array_equal(got, expected.iloc[:, 0].to_numpy(dtype=np.float64))


def test_case_means_by_hand() -> None:
    group = pd.DataFrame(
        {
            "case_id": pd.Series(["y", "x", "y", "x", "w"], dtype="str"),
            "provider": pd.Series(["p"] * 5, dtype="str"),
            "em": [1.0, 0.0, 1.0, 1.0, np.nan],
        }
    )
    # x (rows 1, 3): (0 + 1) / 2 = 0.5; y (rows 0, 2): (1 + 1) / 2 = 1.0; w has no score
    got = _case_means(group["em"], _sorted_case_codes(group))
    assert got.tolist() == [0.5, 1.0]
