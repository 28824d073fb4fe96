"""Mail providers: one module each, the same shape in each.

A provider module ``digest.providers.NAME`` defines ``create(settings, client)``, which
returns a :class:`~digest.providers.base.Provider`. Adding a provider is adding a module:
``provider.name: NAME`` in config.yaml finds it.
"""

from __future__ import annotations

import importlib
import pkgutil

import httpx

from digest.config import Settings
from digest.errors import ConfigError
from digest.providers.base import Batch, Outcome, Provider, make_http_client, send_with_retries

__all__ = [
    "Batch",
    "Outcome",
    "Provider",
    "available",
    "create_provider",
    "make_http_client",
    "send_with_retries",
]

_NOT_PROVIDERS = frozenset({"base"})


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in _NOT_PROVIDERS)


def create_provider(settings: Settings, client: httpx.Client) -> Provider:
    name = settings.provider.name
    if name not in available():
        raise ConfigError(
            f"provider.name: unknown provider {name!r} (available: {', '.join(available())})"
        )
    module = importlib.import_module(f"{__name__}.{name}")
    provider: Provider = module.create(settings, client)
    return provider
