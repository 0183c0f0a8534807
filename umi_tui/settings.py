"""Settings for umi-tui: command-line flags over `UMI_*` environment variables over the TOML
file in the user's config dir (`config.toml`, e.g. ~/.config/umi/config.toml)."""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic_settings import (BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict,
                               TomlConfigSettingsSource)

APP_DIR_NAME = "umi"
DEMO_SEED_DEFAULT = 42


def config_dir() -> Path:
    """Where config.toml and user themes live (platformdirs; follows XDG_CONFIG_HOME)."""
    return Path(platformdirs.user_config_dir(APP_DIR_NAME))


def default_store_url() -> str:
    """The embedded default: a SQLite file in the user's data dir (created 0600 by umi_store)."""
    data_dir = Path(platformdirs.user_data_dir(APP_DIR_NAME))
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return f"sqlite:///{data_dir / 'umi.db'}"


class Settings(BaseSettings):
    """What to open and how to show it."""

    model_config = SettingsConfigDict(env_prefix="UMI_", extra="ignore")

    url: str | None = None
    agent: str = "default"
    theme: str = "umi-dark"
    demo: bool = False
    seed: int = DEMO_SEED_DEFAULT

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_dir() / "config.toml")
        return init_settings, env_settings, toml

    def store_url(self) -> str:
        """The URL to open: the demo simulator, the given URL, or the embedded default."""
        if self.demo:
            return f"sim://?seed={self.seed}"
        return self.url or default_store_url()
