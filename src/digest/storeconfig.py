"""Where the store is, read from config.yaml without building the whole configuration.

``digest status`` runs again and again while an issue goes out, and reads nothing but
the store: it takes ``delivery.database`` and ``delivery.password_env`` from here, from
the same file screened the same way, and so starts in half the time (pydantic and the
settings models are not loaded). Every other command reads the whole configuration
(config.py), whose checks these two keys pass too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digest.errors import ConfigError

DEFAULT_CONFIG_NAME = "config.yaml"
CONFIG_BYTES = 1_000_000  # a config.yaml is a few kilobytes; a larger one is a mistake
CONFIG_NODES = 20_000
DEFAULT_DATABASE = "digest.sqlite3"


@dataclass(frozen=True)
class StoreLocation:
    database: str = DEFAULT_DATABASE
    password_env: str | None = None


def resolve_config_path(explicit: str | None) -> Path | None:
    """The file to read: the explicit one, else ./config.yaml if present, else none."""
    if explicit:
        return Path(explicit)
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.is_file() else None


def read_config(path: Path) -> dict[str, Any] | None:
    """The file's sections, screened (no aliases, bounded size, depth and count); None
    for an empty file."""
    from digest.yamlio import read_yaml

    data = read_yaml(
        path,
        ConfigError,
        missing="config file not found",
        max_bytes=CONFIG_BYTES,
        max_depth=20,
        max_nodes=CONFIG_NODES,
        limits_name="the config file's limit",
    )
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the top level must be a mapping of sections")
    return data


def store_location(path: Path | None) -> StoreLocation:
    """``delivery.database`` and ``delivery.password_env`` from the file at ``path`` (None:
    the defaults), checked as the whole configuration checks them."""
    data = read_config(path) if path is not None else None
    if data is None:
        return StoreLocation()
    delivery = data.get("delivery")
    if delivery is None:
        return StoreLocation()
    if not isinstance(delivery, dict):
        raise ConfigError(f"{path}: delivery: must be a mapping")
    database = delivery.get("database", DEFAULT_DATABASE)
    if not isinstance(database, str):
        raise ConfigError(f"{path}: delivery.database: Input should be a valid string")
    password_env = delivery.get("password_env")
    if password_env is not None and not isinstance(password_env, str):
        raise ConfigError(f"{path}: delivery.password_env: Input should be a valid string")
    return StoreLocation(database, password_env)
