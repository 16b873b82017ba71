"""The built-in simulated provider (OpenAI and Anthropic dialects) on loopback, with a profile."""

from harness.sim.process import SimProcess
from harness.sim.profile import SimProfile

__all__ = ["SimProcess", "SimProfile"]
