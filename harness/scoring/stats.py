"""Moved to :mod:`harness.stats` (every statistic once); this name keeps old imports working."""

from harness.stats import *  # noqa: F403
from harness.stats import FloatArray, Seed, Statistic, Values, __all__  # noqa: F401
