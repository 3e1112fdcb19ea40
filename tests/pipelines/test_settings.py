"""Given a config file, expect the settings it means, or an error naming the key and its file:line."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest
import yaml

from models.metrics import BuyerCap
from pipelines.settings import DEFAULT_CONFIG, Config, ConfigError, load_config
from pipelines.warehouse import connect


def overlay_id(value):
    """Test ids: the key and line, not the YAML text."""
    return "overlay" if isinstance(value, str) and "\n" in value else None


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "overlay.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    return str(raised.value)


def component(config: Config, **changes) -> str:
    """The first default component as a one-line YAML flow mapping, with `changes`."""
    fields = dataclasses.asdict(config.scoring.components[0]) | changes
    return yaml.safe_dump(fields, default_flow_style=True, sort_keys=False, width=10_000).strip()


def test_the_defaults_load_every_key_of_the_documented_file(config: Config):
    documented = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    assert json.loads(json.dumps(dataclasses.asdict(config))) == documented


def test_the_defaults_load_typed_and_frozen(config: Config):
    scoring = config.scoring
    assert 0 < scoring.short_window_days <= scoring.long_window_days
    assert isinstance(scoring.buyer_cap, BuyerCap) and isinstance(scoring.components, tuple)
    assert list(scoring.tier_bars) == ["excellent", "good", "fair"]
    # an integer in the file where the setting is a float is read as a float
    assert type(scoring.priors.min_strength) is float and type(config.protection.limit_base_usd) is float
    assert type(scoring.long_window_days) is int
    with pytest.raises(dataclasses.FrozenInstanceError):
        scoring.long_window_days = 30


def test_a_partial_file_overlays_only_the_keys_it_sets(tmp_path, config):
    path = write(tmp_path, """
        scoring:
          buyer_cap:
            share: 0.1
        protection:
          grace_days: 14
        """)
    got = load_config(path)
    assert got.scoring.buyer_cap == BuyerCap(share=0.1, min_orders=config.scoring.buyer_cap.min_orders)
    assert got.protection.grace_days == 14
    assert dataclasses.replace(got, scoring=config.scoring, protection=config.protection) == config
    assert got.config_hash != config.config_hash
    assert load_config(write(tmp_path, "")) == config  # an empty file changes nothing


def test_a_list_in_the_overlay_replaces_the_default_list(tmp_path, config):
    path = write(tmp_path, f"""
        scoring:
          components:
            - {component(config, name="defects", weight=1)}
        """)
    only = dataclasses.replace(config.scoring.components[0], name="defects", weight=1.0)
    assert load_config(path).scoring.components == (only,)


@pytest.mark.parametrize("text, key, line", [
    ("""
     scoring:
       buyer_cap:
         sahre: 0.1
     """, "scoring.buyer_cap.sahre", 3),
    ("""
     ingest:
       max_file_mb: 10
     scorring:
       long_window_days: 30
     """, "scorring", 3),
], ids=overlay_id)
def test_an_unknown_key_fails_naming_it_and_its_line(tmp_path, text, key, line):
    message = error(tmp_path, text)
    assert f"'{key}'" in message and f"{tmp_path / 'overlay.yaml'}:{line}" in message


@pytest.mark.parametrize("text, key, line", [
    ("""
     scoring:
       long_window_days: "365"
     """, "scoring.long_window_days", 2),
    ("""
     scoring:
       long_window_days: 365.5
     """, "scoring.long_window_days", 2),
    ("""
     scoring:
       priors:
         bound_z: true
     """, "scoring.priors.bound_z", 3),
    ("""
     scoring:
       buyer_cap: 0.05
     """, "scoring.buyer_cap", 2),
    ("""
     scoring:
       tier_bars:
         good: seventy
     """, "scoring.tier_bars.good", 3),
], ids=overlay_id)
def test_a_value_of_the_wrong_type_fails_naming_the_key_and_its_line(tmp_path, text, key, line):
    message = error(tmp_path, text)
    assert f"'{key}'" in message and f"{tmp_path / 'overlay.yaml'}:{line}" in message


def test_bad_yaml_fails_with_the_file_line_and_column(tmp_path):
    message = error(tmp_path, """
        scoring:
          buyer_cap: [1, 2
        protection:
          grace_days: 3
        """)
    assert "not valid YAML" in message
    assert f"{tmp_path / 'overlay.yaml'}:3:" in message


def test_a_missing_file_fails(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nowhere.yaml")


@pytest.mark.parametrize("text, key, line", [
    ("""
     scoring:
       short_window_days: 400
     """, "scoring.short_window_days", 2),
    ("""
     scoring:
       buyer_cap:
         share: 0
     """, "scoring.buyer_cap.share", 3),
    ("""
     scoring:
       tier_bars:
         good: 90
     """, "scoring.tier_bars", 2),
    ("""
     scoring:
       targets:
         defect_rate: 0.1
     """, "scoring.targets.defect_rate", 3),
    ("""
     protection:
       limit_risk_zero_at: 0
     """, "protection.limit_risk_zero_at", 2),
    ("""
     warehouse:
       memory_limit: lots
     """, "warehouse.memory_limit", 2),
    ("""
     warehouse:
       facts_batch_orders: -1
     """, "warehouse.facts_batch_orders", 2),
    ("""
     risk:
       model: boosting_and_forest
     """, "risk.model", 2),
    ("""
     risk:
       latent_rate:
         return_per_day: [0.001, 1]
     """, "risk.latent_rate.return_per_day", 3),
    ("""
     risk:
       latent_rate:
         drift_sd_per_day: []
     """, "risk.latent_rate.drift_sd_per_day", 3),
    ("""
     risk:
       latent_rate:
         drift_sd_per_day: [0.03, -0.01]
     """, "risk.latent_rate.drift_sd_per_day", 3),
    ("""
     risk:
       latent_rate:
         prior_window_days: 0
     """, "risk.latent_rate.prior_window_days", 3),
], ids=overlay_id)
def test_a_value_that_makes_no_sense_fails_naming_the_key_and_its_line(tmp_path, text, key, line):
    message = error(tmp_path, text)
    assert f"'{key}'" in message and f"{tmp_path / 'overlay.yaml'}:{line}" in message


@pytest.mark.parametrize("changes, named", [
    ({"metric": "order_defects"}, "order_defects"),
    ({"window": "medium"}, "medium"),
    ({"weight": 0}, "weight"),
])
def test_a_component_that_makes_no_sense_fails_naming_it_and_its_line(tmp_path, config, changes, named):
    message = error(tmp_path, f"""
        scoring:
          components:
            - {component(config)}
            - {component(config, **changes)}
        """)
    assert "'scoring.components[1]'" in message and named in message
    assert f"{tmp_path / 'overlay.yaml'}:2" in message  # the line of `components:`


def test_an_unknown_metric_in_a_component_lists_the_metrics_allowed(tmp_path, config):
    message = error(tmp_path, f"""
        scoring:
          components:
            - {component(config, metric="order_defects")}
        """)
    assert "order_defects" in message and "order_defect," in message


def test_an_unknown_key_inside_a_component_fails_naming_its_line(tmp_path, config):
    message = error(tmp_path, f"""
        scoring:
          components:
            - {component(config, wieght=1)}
        """)
    assert "'scoring.components[0].wieght'" in message and f"{tmp_path / 'overlay.yaml'}:3" in message


def test_a_quality_limit_that_makes_no_sense_fails_naming_its_line(tmp_path):
    message = error(tmp_path, """
        quality:
          max_failing_share: 1.5
        """)
    assert "quality.max_failing_share" in message and f"{tmp_path / 'overlay.yaml'}:2" in message


@pytest.mark.parametrize("text, key, line", [
    ("""
     scoring:
       priors:
         min_strength: 600
     """, "scoring.priors.min_strength", 3),   # above max_strength 500: the clip in fit_priors inverts
    ("""
     protection:
       watch_limit_share: 1.5
     """, "protection.watch_limit_share", 2),  # watch would cover more than eligible
    ("""
     protection:
       grace_days: -1
     """, "protection.grace_days", 2),
], ids=overlay_id)
def test_settings_that_invert_the_policy_fail_naming_the_key_and_its_line(tmp_path, text, key, line):
    message = error(tmp_path, text)
    assert f"'{key}'" in message and f"{tmp_path / 'overlay.yaml'}:{line}" in message


def test_the_memory_budget_reaches_duckdb_and_leaves_the_config_hash_alone(tmp_path, config, paths):
    (tmp_path / "overlay.yaml").write_text("warehouse:\n  memory_limit: 300MB\n")
    budgeted = load_config(tmp_path / "overlay.yaml")
    assert budgeted.config_hash == config.config_hash  # a budget changes the speed, never a result
    con = connect(paths, memory_limit=budgeted.warehouse.memory_limit)
    try:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    finally:
        con.close()
    assert limit.replace(" ", "") in ("286.1MiB", "300.0MB")


def test_the_engine_is_duckdb_unless_the_config_names_spark(tmp_path, config):
    assert config.engine.name == "duckdb"
    got = load_config(write(tmp_path, """
        engine:
          name: spark
          spark:
            master: spark://head:7077
            conf:
              spark.executor.memory: "8g"
              spark.sql.shuffle.partitions: "64"
            handoff_dir: s3://bucket/suprel
            handoff_read_as: s3a://bucket/suprel
        """))
    spark = got.engine.spark
    assert (got.engine.name, spark.master, spark.handoff_read_as) == ("spark", "spark://head:7077", "s3a://bucket/suprel")
    # the overlay adds Spark settings of its own and overrides the defaults it names
    assert spark.conf == {**config.engine.spark.conf, "spark.executor.memory": "8g", "spark.sql.shuffle.partitions": "64"}
    # both engines give the same rows: the engine is no part of the hash published with them
    assert got.config_hash == config.config_hash


@pytest.mark.parametrize("text, key, line", [
    ("""
     engine:
       name: snowflake
     """, "engine.name", 2),
    ("""
     engine:
       spark:
         master: ""
     """, "engine.spark.master", 3),
    ("""
     engine:
       spark:
         conf:
           sql.shuffle.partitions: "8"
     """, "engine.spark.conf.sql.shuffle.partitions", 4),
    ("""
     engine:
       spark:
         conf:
           spark.sql.session.timeZone: Europe/Paris
     """, "engine.spark.conf.spark.sql.session.timeZone", 4),
    ("""
     engine:
       spark:
         conf:
           spark.sql.shuffle.partitions: 8
     """, "engine.spark.conf.spark.sql.shuffle.partitions", 4),
    ("""
     engine:
       spark:
         handoff_read_as: s3a://bucket/suprel
     """, "engine.spark.handoff_read_as", 3),
], ids=overlay_id)
def test_an_engine_setting_that_cannot_work_fails_naming_the_key_and_its_line(tmp_path, text, key, line):
    message = error(tmp_path, text)
    assert f"'{key}'" in message and f"{tmp_path / 'overlay.yaml'}:{line}" in message
