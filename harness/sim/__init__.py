"""The built-in simulated provider: OpenAI-compatible, on loopback, with a known profile."""

from harness.sim.process import SimProcess
from harness.sim.profile import SimProfile

__all__ = ["SimProcess", "SimProfile"]
