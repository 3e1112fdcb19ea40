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
import re
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from models.facts import BY_NAME as METRICS
from models.latent_rate import LatentRateSettings
from models.policy import ProtectionRules
from models.score import TIER_ORDER
from models.scorecard import ScoringSettings

from pipelines.contract import SOURCES
from pipelines.engines import ENGINES, FORCED_SPARK_CONF, EngineSettings

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "config" / "suprel.yaml"


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the key and where it is."""


@dataclass(frozen=True)
class IngestConfig:
    null_tokens: tuple[str, ...]
    max_file_mb: int


@dataclass(frozen=True)
class QualityConfig:
    """The data quality gate's limits; config/suprel.yaml documents each one."""

    chunk_rows: int
    future_tolerance_hours: int
    max_failing_share: float
    failing_share_min_rows: int
    pending_reference_days: int
    freshness_days: dict[str, int]
    volume_history_files: int
    volume_min_history_files: int
    volume_spread_limit: float



@dataclass(frozen=True)
class GradientBoostingConfig:
    """HistGradientBoostingClassifier's hyper-parameters (config `risk.gradient_boosting`)."""

    learning_rate: float
    max_iter: int
    max_leaf_nodes: int
    min_samples_leaf: int
    l2_regularization: float
    early_stopping: bool
    n_iter_no_change: int
    validation_fraction: float


@dataclass(frozen=True)
class BacktestConfig:
    folds: int
    test_days: int


@dataclass(frozen=True)
class RiskConfig:
    """The risk model's settings; config/suprel.yaml documents each one."""

    model: str
    training_days: int
    maturity_days: int
    max_training_orders: int
    seed: int
    gradient_boosting: GradientBoostingConfig
    logistic_c: float
    calibration: str
    calibration_share: float
    typical_order_days: int
    drift_days: int
    drift_psi_threshold: float
    psi_bins: int
    latent_rate: LatentRateSettings
    backtest: BacktestConfig

    def as_json(self) -> dict:
        """The settings in JSON's types (lists for tuples), as models and backtests store them."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


@dataclass(frozen=True)
class PublishConfig:
    max_protection_change_share: float


@dataclass(frozen=True)
class WarehouseConfig:
    memory_limit: str  # DuckDB's budget for a run's work, e.g. "6GB"; "" for DuckDB's default
    facts_batch_orders: int  # most orders placed in one batch of days whose facts are computed together


@dataclass(frozen=True)
class Config:
    ingest: IngestConfig
    publish: PublishConfig
    scoring: ScoringSettings
    protection: ProtectionRules
    quality: QualityConfig
    risk: RiskConfig
    engine: EngineSettings
    warehouse: WarehouseConfig

    @property
    def config_hash(self) -> str:
        """A short fingerprint of every setting that can change a result, published with
        each row it produced. Left out: the engine (both compute the same rows, the parity
        test holds them to it, so moving a run to Spark must not look like a change of
        policy) and the warehouse's settings (they change only speed and memory)."""
        settings = dataclasses.asdict(self)
        settings.pop("engine")
        settings.pop("warehouse")
        payload = json.dumps(settings, sort_keys=True, default=str)
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
    config = _build(Config, merged, prefix="", marks=marks)
    _check_meaning(config, marks)
    _check_quality(config.quality, marks)
    _check_risk(config.risk, marks)
    _check_engine(config.engine, marks)
    return config


MEMORY_SIZE = re.compile(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def _check_engine(engine: EngineSettings, marks: dict) -> None:
    """Engine settings that type-check but cannot work, named by key and file:line."""
    spark = engine.spark
    problems = []
    if engine.name not in ENGINES:
        problems.append(("engine.name", f"must be one of {', '.join(ENGINES)}"))
    if not spark.master.strip():
        problems.append(("engine.spark.master", "must be a Spark master URL, e.g. local[2] or spark://host:7077"))
    problems += [(f"engine.spark.conf.{key}", "is not a Spark setting (they start with 'spark.')")
                 for key in spark.conf if not key.startswith("spark.")]
    problems += [(f"engine.spark.conf.{key}", f"must stay {value}: results must not depend on the machine")
                 for key, value in FORCED_SPARK_CONF.items() if spark.conf.get(key, value) != value]
    if spark.handoff_read_as and not spark.handoff_dir:
        problems.append(("engine.spark.handoff_read_as", "needs engine.spark.handoff_dir: the folder it names"))
    if problems:
        key, message = problems[0]
        raise ConfigError(f"{marks.get(key, marks.get('engine', 'config'))}: '{key}' {message}")


RISK_MODELS = ("hist_gradient_boosting", "logistic_regression", "boosting_and_logistic")
RISK_CALIBRATIONS = ("isotonic", "sigmoid", "stacked", "none")


def _check_risk(risk: RiskConfig, marks: dict) -> None:
    """Risk settings that type-check but make no sense, named by key and file:line."""
    problems = []
    if risk.model not in RISK_MODELS:
        problems.append(("risk.model", f"must be one of {', '.join(RISK_MODELS)}"))
    if risk.calibration not in RISK_CALIBRATIONS:
        problems.append(("risk.calibration", f"must be one of {', '.join(RISK_CALIBRATIONS)}"))
    if not 0 < risk.calibration_share < 1:
        problems.append(("risk.calibration_share", "must be a share strictly between 0 and 1"))
    positive = {"risk.training_days": risk.training_days, "risk.typical_order_days": risk.typical_order_days,
                "risk.drift_days": risk.drift_days, "risk.backtest.folds": risk.backtest.folds,
                "risk.backtest.test_days": risk.backtest.test_days}
    problems += [(key, "must be >= 1") for key, value in positive.items() if value < 1]
    if risk.max_training_orders < 0:
        problems.append(("risk.max_training_orders", "must be >= 0 (0: no limit)"))
    if risk.maturity_days < 0:
        problems.append(("risk.maturity_days", "must be >= 0"))
    if risk.psi_bins < 2:
        problems.append(("risk.psi_bins", "must be >= 2"))
    if risk.drift_psi_threshold <= 0:
        problems.append(("risk.drift_psi_threshold", "must be > 0"))
    latent = risk.latent_rate
    if not latent.drift_sd_per_day or min(latent.drift_sd_per_day) < 0:
        problems.append(("risk.latent_rate.drift_sd_per_day", "must list one or more candidates, each >= 0"))
    if not latent.return_per_day or not all(0 <= r < 1 for r in latent.return_per_day):
        problems.append(("risk.latent_rate.return_per_day", "must list one or more probabilities in [0, 1)"))
    if latent.prior_window_days < 1:
        problems.append(("risk.latent_rate.prior_window_days", "must be >= 1"))
    if latent.prior_min_trials < 1:
        problems.append(("risk.latent_rate.prior_min_trials", "must be >= 1"))
    if problems:
        key, message = problems[0]
        raise ConfigError(f"{marks.get(key, 'config')}: '{key}' {message}")


def _check_quality(quality: QualityConfig, marks: dict) -> None:
    """Quality limits that type-check but make no sense, named by key and file:line."""
    problems = [(f"quality.freshness_days.{name}", f"is not a source ({', '.join(SOURCES)})")
                for name in quality.freshness_days if name not in SOURCES]
    problems += [(f"quality.freshness_days.{name}", "must be >= 0") for name, days in quality.freshness_days.items() if days < 0]
    if not 0 <= quality.max_failing_share <= 1:
        problems.append(("quality.max_failing_share", "must be a share between 0 and 1"))
    for key in ("chunk_rows", "failing_share_min_rows", "volume_min_history_files"):
        if getattr(quality, key) < 1:
            problems.append((f"quality.{key}", "must be >= 1"))
    for key in ("future_tolerance_hours", "pending_reference_days"):
        if getattr(quality, key) < 0:
            problems.append((f"quality.{key}", "must be >= 0"))
    if quality.volume_history_files < quality.volume_min_history_files:
        problems.append(("quality.volume_history_files", "must be >= quality.volume_min_history_files"))
    if quality.volume_spread_limit <= 0:
        problems.append(("quality.volume_spread_limit", "must be > 0"))
    if problems:
        key, message = problems[0]
        raise ConfigError(f"{marks.get(key, 'config')}: '{key}' {message}")


def _check_meaning(config: Config, marks: dict) -> None:
    """Values that type-check but make no sense, named by key."""
    scoring = config.scoring
    problems = []
    if not 0 < scoring.short_window_days <= scoring.long_window_days:
        problems.append(("scoring.short_window_days", "must be > 0 and <= scoring.long_window_days"))
    if not 0 < scoring.buyer_cap.share <= 1:
        problems.append(("scoring.buyer_cap.share", "must be in (0, 1]"))
    for i, c in enumerate(scoring.components):
        key = f"scoring.components[{i}]"
        if c.metric not in METRICS:
            problems.append((key, f"metric '{c.metric}' is not one of {', '.join(METRICS)}"))
        if c.window not in ("long", "short"):
            problems.append((key, f"window '{c.window}' must be long or short"))
        if c.weight <= 0 or not 0 < c.half_at <= 1:
            problems.append((key, "needs weight > 0 and 0 < half_at <= 1"))
    if set(scoring.tier_bars) != set(TIER_ORDER) or list(scoring.tier_bars.values()) != sorted(scoring.tier_bars.values(), reverse=True):
        problems.append(("scoring.tier_bars", f"needs {', '.join(TIER_ORDER)} with decreasing bars"))
    for name in scoring.targets:
        if name not in METRICS:
            problems.append((f"scoring.targets.{name}", "is not a metric of models/facts.py"))
    priors, protection = scoring.priors, config.protection
    if not 0 < priors.min_strength <= priors.max_strength:
        problems.append(("scoring.priors.min_strength", "must be > 0 and <= scoring.priors.max_strength"))
    if priors.bound_z <= 0:
        problems.append(("scoring.priors.bound_z", "must be > 0"))
    if protection.limit_risk_zero_at <= 0:
        problems.append(("protection.limit_risk_zero_at", "must be > 0"))
    if not 0 <= protection.watch_limit_share <= 1:
        problems.append(("protection.watch_limit_share", "must be between 0 and 1"))
    if not 0 <= protection.min_uncapped_order_share <= 1:
        problems.append(("protection.min_uncapped_order_share", "must be between 0 and 1"))
    for key in ("grace_days", "return_margin", "min_matured_orders", "min_distinct_buyers", "min_account_age_days",
                "limit_base_usd", "limit_per_sqrt_order_usd", "limit_max_usd"):
        if getattr(protection, key) < 0:
            problems.append((f"protection.{key}", "must be >= 0"))
    if not 0 <= protection.eligible_bar <= 100:
        problems.append(("protection.eligible_bar", "must be between 0 and 100"))
    if config.warehouse.facts_batch_orders < 0:
        problems.append(("warehouse.facts_batch_orders", "must be >= 0 (0: every stale day in one batch)"))
    if config.warehouse.memory_limit and not MEMORY_SIZE.fullmatch(config.warehouse.memory_limit):
        problems.append(("warehouse.memory_limit", "must be a size such as 6GB or 500MB, or empty for DuckDB's default"))
    if problems:
        key, message = problems[0]
        raise ConfigError(f"{marks.get(key.split('[')[0], 'config')}: '{key}' {message}")


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
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                dotted = f"{prefix.rstrip('.')}[{index}]"
                marks[dotted] = f"{path}:{item.start_mark.line + 1}"
                walk(item, dotted + ".")

    walk(yaml.compose(path.read_text(encoding="utf-8")), "")
    return marks


# Mappings whose keys are the user's to choose: an overlay adds to them and overrides
# their entries, and an unknown key there is no typo.
OPEN_MAPPINGS = ("engine.spark.conf",)


def _overlay(base: dict, overlay: dict, prefix: str, path: Path, marks: dict) -> dict:
    merged = dict(base)
    for key, value in overlay.items():
        dotted = f"{prefix}{key}"
        if dotted in OPEN_MAPPINGS and isinstance(value, dict):
            merged[key] = {**base[key], **value}
            continue
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
