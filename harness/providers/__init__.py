"""Transports: how one request reaches one provider and becomes a timed row."""
