"""Exceptions raised by harness.

The tree::

    HarnessError                 every error harness raises on purpose
    ├── ConfigError              a config or suite file is invalid (CLI exit code 2)
    ├── StoreError               the results root cannot be read or written
    └── ProviderSetupError       a provider the run needs could not be started

Errors of a single request never raise: the transport turns them into rows with
``status="error"`` and an ``error_type``.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base class of every error harness raises on purpose."""


class ConfigError(HarnessError):
    """A config or suite file is invalid; the message names file, key path and line."""


class StoreError(HarnessError):
    """The results root is missing, empty, or holds no such run."""


class ProviderSetupError(HarnessError):
    """A provider that the run needs (a simulator, a local server) could not start."""
