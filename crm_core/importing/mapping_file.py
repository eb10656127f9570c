"""Mapping files for repeated migrations, in TOML (always) or YAML (when PyYAML is installed):

    # people.toml
    sheet = "Contacts"      # optional: --sheet
    sep = ";"               # optional: --sep
    [columns]               # CRM field = source column
    name = "Full Name"
    email = "E-mail"

Options given on the command line win over the file's.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crm_core.i18n import _
from crm_core.importing.table import ImportFailed

OPTIONS = ("sheet", "sep", "currency", "query")


@dataclass
class MappingFile:
    columns: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)


def _parse(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            raise ImportFailed(
                _("{file}: YAML mapping files need PyYAML (pip install pyyaml); or use TOML", file=path.name)
            ) from None
        try:
            return yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ImportFailed(_("{file} is not valid YAML: {error}", file=path.name, error=exc)) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ImportFailed(_("{file} is not valid TOML: {error}", file=path.name, error=exc)) from None


def load(path: str | Path) -> MappingFile:
    path = Path(path)
    if not path.is_file():
        raise ImportFailed(_("no such mapping file: {path}", path=path))
    data = _parse(path)
    if not isinstance(data, dict):
        raise ImportFailed(_("{file}: expected a table with [columns] (see the README)", file=path.name))
    columns = data.get("columns", {})
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise ImportFailed(
            _('{file}: [columns] maps CRM fields to column names, e.g. name = "Full Name"', file=path.name)
        )
    unknown = sorted(set(data) - {"columns", *OPTIONS})
    if unknown:
        raise ImportFailed(
            _(
                "{file}: unknown key(s) {keys} (known: columns, {options})",
                file=path.name,
                keys=", ".join(unknown),
                options=", ".join(OPTIONS),
            )
        )
    options = {key: str(data[key]) for key in OPTIONS if key in data}
    return MappingFile({str(k).strip().lower(): v for k, v in columns.items()}, options)


def parse_pairs(items: list[str]) -> dict[str, str]:
    """``--map field=Column`` pairs."""
    mapping = {}
    for item in items:
        field_name, sep, column = item.partition("=")
        if not sep or not field_name.strip():
            raise ImportFailed(_("--map '{item}': write it as field=Column", item=item))
        mapping[field_name.strip().lower()] = column.strip()
    return mapping
