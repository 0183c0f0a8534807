"""Settings for umi-tui: command-line flags over `UMI_*` environment variables over the TOML
file in the user's config dir (`config.toml`, e.g. ~/.config/umi/config.toml).

`Settings` is a plain value, cheap to import. Reading the environment and the file goes
through pydantic-settings (umi_tui.settings_sources), which is imported only when one of
`UMI_URL`, `UMI_AGENT`, `UMI_THEME`, `UMI_DEMO`, `UMI_SEED` is set or the file exists:
without them the flags (typed by click) are all there is, and the inspector starts
~60 ms sooner.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import platformdirs

APP_DIR_NAME = "umi"
DEMO_SEED_DEFAULT = 42
SETTINGS_ENV_PREFIX = "UMI_"


def config_dir() -> Path:
    """Where config.toml and user themes live (platformdirs; follows XDG_CONFIG_HOME)."""
    return Path(platformdirs.user_config_dir(APP_DIR_NAME))


def config_file() -> Path:
    return config_dir() / "config.toml"


def default_store_url() -> str:
    """The embedded default: a SQLite file in the user's data dir (created 0600 by umi_store)."""
    data_dir = Path(platformdirs.user_data_dir(APP_DIR_NAME))
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return f"sqlite:///{data_dir / 'umi.db'}"


class SettingsError(ValueError):
    """A setting from the environment or the config file has a value that cannot work."""


@dataclass(frozen=True)
class Settings:
    """What to open and how to show it."""

    url: str | None = None
    agent: str = "default"
    theme: str = "umi-dark"
    demo: bool = False
    seed: int = DEMO_SEED_DEFAULT

    def store_url(self) -> str:
        """The URL to open: the demo simulator, the given URL, or the embedded default."""
        if self.demo:
            return f"sim://?seed={self.seed}"
        return self.url or default_store_url()


def setting_names() -> list[str]:
    return [field.name for field in fields(Settings)]


def load_settings(given: dict[str, Any]) -> Settings:
    """The flags `given` over the environment over the config file (raises SettingsError
    for a value that is not of its setting's type)."""
    wanted = {f"{SETTINGS_ENV_PREFIX}{name}".casefold() for name in setting_names()}
    if not any(key.casefold() in wanted for key in os.environ) and not config_file().exists():
        return Settings(**given)
    from .settings_sources import read_settings
    return read_settings(given)
