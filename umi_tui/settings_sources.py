"""The sources of settings beyond the flags, read by pydantic-settings: `UMI_*` environment
variables (any case) and config.toml, checked against the types of `Settings`' fields."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, get_type_hints

from pydantic import ValidationError, create_model
from pydantic_settings import (BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict,
                               TomlConfigSettingsSource)

from .settings import SETTINGS_ENV_PREFIX, Settings, SettingsError, config_file


class _Sources(BaseSettings):
    """Flags (init arguments) over env over the TOML file; unknown keys are ignored."""

    model_config = SettingsConfigDict(env_prefix=SETTINGS_ENV_PREFIX, extra="ignore")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return init_settings, env_settings, toml


_types = get_type_hints(Settings)
_fields: dict[str, Any] = {field.name: (_types[field.name], field.default)  # each has one
                           for field in fields(Settings)}
_SettingsModel = create_model("SettingsModel", __base__=_Sources, **_fields)  # Settings' fields


def read_settings(given: dict[str, Any]) -> Settings:
    """Settings from the flags `given`, the environment and the config file."""
    try:
        model = _SettingsModel(**given)
    except ValidationError as error:
        raise SettingsError(str(error)) from None
    return Settings(**{name: getattr(model, name) for name in _types})
