"""Transports: one streamed call in, one timed row out.

The native clients (``direct`` for OpenAI-compatible servers, ``anthropic``, ``gemini``)
each speak one dialect over aiohttp and are opened by name with :func:`open_client`;
``litellm`` (:mod:`.transport`) reaches every other provider. :mod:`.trace` holds the
metric definitions every transport's row is built with.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from harness.providers.trace import Endpoint
from harness.request import RequestSpec

# transport name → (module, class); imported only when a run sends through it.
NATIVE_CLIENTS: dict[str, tuple[str, str]] = {
    "direct": ("harness.providers.direct", "DirectClient"),
    "anthropic": ("harness.providers.anthropic", "AnthropicClient"),
    "gemini": ("harness.providers.gemini", "GeminiClient"),
}


class NativeClient(Protocol):
    """What a native transport offers: one row per request, never raising for API errors."""

    async def send(self, endpoint: Endpoint, request: RequestSpec) -> dict[str, Any]: ...

    async def close(self) -> None: ...


def open_client(transport: str) -> NativeClient:
    """A new client of the native transport ``transport`` (one per event loop)."""
    module, name = NATIVE_CLIENTS[transport]
    client: NativeClient = getattr(importlib.import_module(module), name)()
    return client
