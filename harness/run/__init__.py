"""``harness run``: from a validated config to a stored run.

- :mod:`.session`: the entry point (:func:`~harness.run.session.execute`), the manifest;
- :mod:`.plan`: every request of the run in phases, and what ``validate``/``--dry-run`` say;
- :mod:`.endpoints`: keys, transports and prices of the providers and judges;
- :mod:`.servers`: the child processes a run starts (simulator, local model servers);
- :mod:`.executors`: where the plan is sent from (this process, or worker processes);
- :mod:`.pipeline`: one request's way: cache, transport, scoring, judge;
- :mod:`.scheduler`: phases, load patterns, retries, pacing (one event loop);
- :mod:`.budget`, :mod:`.limits`, :mod:`.clock`, :mod:`.cache`: what the scheduler
  consults per request (spend cap, rate limits and retries, clock health, response cache).
"""
