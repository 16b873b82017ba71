"""Executors: where a run's plan is sent from."""
