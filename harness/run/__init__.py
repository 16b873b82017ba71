"""``harness run``: from a validated config to a stored run.

- :mod:`.session`: the entry point (:func:`~harness.run.session.execute`), the manifest;
- :mod:`.scheduler`: phases, load patterns, retries, pacing (one event loop);
- :mod:`.executors`: where the scheduler runs (this process, or worker processes);
- :mod:`.budget`, :mod:`.limits`, :mod:`.clock`, :mod:`.cache`: what the scheduler
  consults per request (spend cap, rate limits and retries, clock health, response cache).
"""
