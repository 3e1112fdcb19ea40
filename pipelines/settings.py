"""Run settings: the config file parsed once into a frozen, typed object, and the data paths.

Defaults live in `config/suprel.yaml`, documented there. A user file overlays them; any
unknown key or wrongly typed value fails at start with the key's dotted name, file and
line, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "config" / "suprel.yaml"


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the key and where it is."""


@dataclass(frozen=True)
class IngestConfig:
    null_tokens: tuple[str, ...]
    max_file_mb: int


@dataclass(frozen=True)
class Config:
    ingest: IngestConfig

    @property
    def config_hash(self) -> str:
        """A short fingerprint of every setting, published with each row it produced."""
        payload = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class DataPaths:
    """Where one dataset lives: landing input, the warehouse, published output and artifacts."""

    root: Path

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def warehouse_dir(self) -> Path:
        return self.root / "warehouse"

    @property
    def warehouse(self) -> Path:
        return self.warehouse_dir / "suprel.duckdb"

    @property
    def published(self) -> Path:
        return self.root / "published"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def truth(self) -> Path:
        return self.root / "truth"


def load_config(path: Path | str | None = None) -> Config:
    """The defaults, overlaid with `path` when given, checked and frozen."""
    merged = _read_yaml(DEFAULT_CONFIG)
    marks = _line_marks(DEFAULT_CONFIG)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        overlay = _read_yaml(path)
        marks.update(_line_marks(path))
        merged = _overlay(merged, overlay, prefix="", path=path, marks=marks)
    return _build(Config, merged, prefix="", marks=marks)


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def _line_marks(path: Path) -> dict[str, str]:
    """Dotted key -> 'file:line' for error messages."""
    marks: dict[str, str] = {}

    def walk(node, prefix):
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                dotted = f"{prefix}{key_node.value}"
                marks[dotted] = f"{path}:{key_node.start_mark.line + 1}"
                walk(value_node, dotted + ".")

    walk(yaml.compose(path.read_text(encoding="utf-8")), "")
    return marks


def _overlay(base: dict, overlay: dict, prefix: str, path: Path, marks: dict) -> dict:
    merged = dict(base)
    for key, value in overlay.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"{marks.get(dotted, path)}: unknown config key '{dotted}'")
        if isinstance(base[key], dict) and isinstance(value, dict):
            merged[key] = _overlay(base[key], value, dotted + ".", path, marks)
        else:
            merged[key] = value
    return merged


def _build(cls, data: dict, prefix: str, marks: dict):
    """Instantiate dataclass `cls` from `data`, checking keys and types recursively."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise ConfigError(f"{marks.get(prefix + key, 'config')}: unknown config key '{prefix}{key}'")
    values = {}
    for name in names:
        dotted = prefix + name
        if name not in data:
            raise ConfigError(f"config key '{dotted}' is missing")
        values[name] = _coerce(hints[name], data[name], dotted, marks)
    return cls(**values)


def _coerce(hint, value, dotted: str, marks: dict):
    where = marks.get(dotted, "config")
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: '{dotted}' must be a mapping")
        return _build(hint, value, dotted + ".", marks)
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: '{dotted}' must be a list")
        item = typing.get_args(hint)[0]
        return tuple(_coerce(item, v, f"{dotted}[{i}]", marks) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: '{dotted}' must be a mapping")
        item = typing.get_args(hint)[1]
        return {k: _coerce(item, v, f"{dotted}.{k}", marks) for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and (type(value) is not hint):
        raise ConfigError(f"{where}: '{dotted}' must be {hint.__name__}, got {value!r}")
    return value


def resolve_data_dir(cli_value: str | None) -> DataPaths:
    """--data-dir wins, then SUPREL_DATA_DIR, then ./data."""
    return DataPaths(Path(cli_value or os.environ.get("SUPREL_DATA_DIR") or "data").resolve())
