"""Themes from TOML files: the ones shipped in the project's themes/ and the user's own in
<config dir>/themes/. Each file holds the fields of a Textual `Theme`."""

from __future__ import annotations

import tomllib
import sys
from pathlib import Path

from textual.theme import Theme


def _shipped_themes_dir() -> Path:
    """themes/ beside the package in a checkout (editable install), else where a wheel
    installed it (pyproject data-files: <prefix>/share/umi/themes)."""
    checkout = Path(__file__).resolve().parent.parent / "themes"
    return checkout if checkout.is_dir() else Path(sys.prefix) / "share" / "umi" / "themes"


SHIPPED_THEMES_DIR = _shipped_themes_dir()


def load_theme(path: Path) -> Theme:
    """One theme file; ValueError naming the file when it is not a valid theme."""
    try:
        with path.open("rb") as file:
            fields = tomllib.load(file)
        return Theme(**fields)
    except (OSError, tomllib.TOMLDecodeError, TypeError) as error:
        raise ValueError(f"theme file {path}: {error}") from None


def load_themes(*dirs: Path) -> tuple[list[Theme], list[str]]:
    """Every theme in `dirs` (later dirs may replace earlier names), and the problems found."""
    themes: dict[str, Theme] = {}
    problems: list[str] = []
    for directory in dirs:
        for path in sorted(directory.glob("*.toml")) if directory.is_dir() else ():
            try:
                theme = load_theme(path)
            except ValueError as error:
                problems.append(str(error))
                continue
            themes[theme.name] = theme
    return list(themes.values()), problems
