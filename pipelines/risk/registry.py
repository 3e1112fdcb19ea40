"""The model registry: <data-dir>/artifacts/models/<model_version>/ and a `current` pointer.

Each version's folder holds `model.joblib` (the fitted estimator), `metadata.json`
(training window, feature names and dtypes, the latent rates' filters, data fingerprint,
library versions, backtest figures, reference distributions for drift), `report.html`,
and `drift/` (one JSON per scoring date). A version is written aside and renamed into
place, and `current` is replaced atomically, so a reader never sees half a model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path

import joblib
import pandas as pd
import polars as pl

from models.latent_rate import LatentStream
from pipelines.settings import DataPaths

LIBRARIES = ("scikit-learn", "numpy", "pandas", "polars", "pyarrow", "duckdb", "ibis-framework", "joblib")


class RiskModelMismatch(ValueError):
    """A registered model cannot score the features the pipeline would give it."""


@dataclass
class RegisteredModel:
    version: str
    estimator: object
    metadata: dict
    folder: Path

    @property
    def features(self) -> list[str]:
        return [f["name"] for f in self.metadata["features"]]


def models_dir(paths: DataPaths) -> Path:
    return paths.artifacts / "models"


def feature_schema(frame: pl.DataFrame, features: list[str]) -> list[dict]:
    """[{name, dtype}] of the model's features, in order, as the frame holds them."""
    return [{"name": f, "dtype": str(frame.schema[f])} for f in features]


def fingerprint(frame: pl.DataFrame, columns: list[str]) -> str:
    """SHA-256 of the rows (in their order) of these columns: the identity of a training set."""
    hashed = pd.util.hash_pandas_object(frame.select(columns).to_pandas(), index=False)
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def register(paths: DataPaths, version: str, estimator, metadata: dict, report_html: str | None = None,
             make_current: bool = True) -> Path:
    """Write the model, its metadata and report under models/<version>/; point `current` at it."""
    root = models_dir(paths)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=root))
    joblib.dump(estimator, staging / "model.joblib")
    (staging / "metadata.json").write_text(json.dumps({**metadata, "model_version": version}, indent=2,
                                                      default=str), encoding="utf-8")
    if report_html is not None:
        (staging / "report.html").write_text(report_html, encoding="utf-8")
    target = root / version
    retired = None
    if target.exists():  # the same data and settings again: replace the identical version
        retired = Path(tempfile.mkdtemp(prefix=f".{version}.retired.", dir=root))
        os.replace(target, retired / version)
    os.replace(staging, target)
    if retired is not None:
        shutil.rmtree(retired)
    if make_current:
        set_current(paths, version)
    return target


def set_current(paths: DataPaths, version: str) -> None:
    root = models_dir(paths)
    if not (root / version / "metadata.json").exists():
        raise FileNotFoundError(f"no registered risk model {version} under {root}")
    temporary = root / ".current.tmp"
    temporary.write_text(version + "\n", encoding="utf-8")
    os.replace(temporary, root / "current")


def latent_to_json(streams: dict[str, LatentStream | None]) -> dict:
    return {stream: None if fitted is None else dataclasses.asdict(fitted) for stream, fitted in streams.items()}


def latent_streams(model: RegisteredModel) -> dict[str, LatentStream | None]:
    """The latent rates' filters the model was trained with (none for a model from before
    them, whose feature schema `check_schema` then refuses)."""
    stored = model.metadata.get("latent_rates") or {}
    return {stream: None if fitted is None else LatentStream(**fitted) for stream, fitted in stored.items()}


def current_version(paths: DataPaths) -> str | None:
    pointer = models_dir(paths) / "current"
    return pointer.read_text(encoding="utf-8").strip() if pointer.exists() else None


def load(paths: DataPaths, version: str | None = None) -> RegisteredModel:
    """The registered model `version` (default: the current one)."""
    version = version or current_version(paths)
    if version is None:
        raise FileNotFoundError(f"no risk model registered under {models_dir(paths)}: run `suprel train` first")
    folder = models_dir(paths) / version
    if not (folder / "metadata.json").exists():
        raise FileNotFoundError(f"risk model {version} is not in the registry {models_dir(paths)}")
    meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    return RegisteredModel(version, joblib.load(folder / "model.joblib"), meta, folder)


def check_schema(model: RegisteredModel, schema: list[dict]) -> None:
    """Refuse to score features whose names, order or dtypes differ from the model's."""
    expected = [(f["name"], f["dtype"]) for f in model.metadata["features"]]
    given = [(f["name"], f["dtype"]) for f in schema]
    if expected == given:
        return
    missing = [n for n, _ in expected if n not in dict(given)]
    extra = [n for n, _ in given if n not in dict(expected)]
    retyped = [f"{n} ({t} -> {dict(given)[n]})" for n, t in expected if n in dict(given) and dict(given)[n] != t]
    detail = "; ".join(part for part in (
        f"missing {', '.join(missing)}" if missing else "", f"unexpected {', '.join(extra)}" if extra else "",
        f"retyped {', '.join(retyped)}" if retyped else "",
        "same features in another order" if not (missing or extra or retyped) else "") if part)
    raise RiskModelMismatch(
        f"risk model {model.version} was trained on another feature schema than the pipeline now computes "
        f"({detail}): retrain it with `suprel train`, or point {model.folder.parent / 'current'} at a matching "
        f"version")


def save_drift(model: RegisteredModel, as_of: str, drift: dict) -> Path:
    folder = model.folder / "drift"
    folder.mkdir(exist_ok=True)
    path = folder / f"as_of={as_of}.json"
    path.write_text(json.dumps(drift, indent=2), encoding="utf-8")
    return path
