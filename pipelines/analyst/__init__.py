"""The analysts' Python API: the published rankings, scorecards, comparisons and policy what-ifs.

Reads `<data-dir>/published/` only, never the warehouse (a run may hold it), and writes
nothing. Every frame comes back as polars (default) or pandas: `frame="pandas"`.

    from pipelines import analyst

    pub = analyst.open("data")                 # or SUPREL_DATA_DIR, default ./data
    pub.rankings()                              # the current snapshot (shared/CONTRACT.md section 3)
    pub.history(frame="pandas")                 # every published snapshot, stacked
    pub.metrics()                               # supplier x metric x window evidence of the current snapshot
    card = pub.scorecard("S000012")             # metrics over 90 and 365 days, tier, decision,
    card.metrics, card.reasons, card.risk       #   reasons in words, risk and its drivers, history
    pub.compare(["S000012", "S000031"])         # side by side, one row per supplier
    result = pub.what_if(eligible_bar=65, weights={"late_delivery": 0.5})
    result.summary, result.gained, result.lost  # who gains or loses protection, covered GMV

`what_if` takes any protection rule of config `protection:` as a keyword
(min_matured_orders, eligible_bar, grace_days, limit_max_usd, ...), and `weights`,
`half_at` (per score component) and `tier_bars`. Charts: `pipelines.analyst.charts`.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from pipelines.analyst import charts, risk, scorecard as _scorecard, store, what_if as _what_if
from pipelines.analyst.redecide import Scored, decide, score
from pipelines.analyst.scorecard import Scorecard
from pipelines.analyst.store import NothingPublished, as_frame
from pipelines.analyst.what_if import WhatIf
from pipelines.settings import load_config, resolve_data_dir

__all__ = ["Published", "open", "Scorecard", "WhatIf", "NothingPublished", "charts"]

COMPARED_METRICS = ("order_defect", "late_shipment", "on_time_delivery", "dispute_loss", "supplier_cancellation",
                    "non_delivery")


def open(data_dir: str | Path | None = None, config_path: str | Path | None = None) -> "Published":  # noqa: A001
    """The publication of a dataset (--data-dir, else SUPREL_DATA_DIR, else ./data), read with the
    scoring policy of `config_path` (else SUPREL_CONFIG, else config/suprel.yaml)."""
    return Published(data_dir, config_path or os.environ.get("SUPREL_CONFIG"))


class Published:
    """One dataset's publication. Files are read when first needed and kept; `refresh()` rereads."""

    def __init__(self, data_dir: str | Path | None = None, config_path: str | Path | None = None):
        self.paths = resolve_data_dir(str(data_dir) if data_dir is not None else None)
        self.config = load_config(config_path)
        from pipelines.scoring import policy_from

        self.policy = policy_from(self.config)
        self._cache: dict = {}

    def refresh(self) -> "Published":
        """Forget what was read: the next call sees the newest publication."""
        self._cache.clear()
        return self

    def _get(self, key: str, read):
        if key not in self._cache:
            self._cache[key] = read()
        return self._cache[key]

    @property
    def as_of(self):
        return self._rankings()["as_of_date"][0]

    def _rankings(self) -> pl.DataFrame:
        return self._get("rankings", lambda: store.read_rankings(self.paths))

    def _metrics(self) -> pl.DataFrame:
        return self._get("metrics", lambda: store.read_metrics(self.paths, self.as_of))

    def _decisions(self) -> pl.DataFrame:
        return self._get("decisions", lambda: store.read_decisions(self.paths, self.as_of))

    def _history(self) -> pl.DataFrame:
        return self._get("history", lambda: store.read_history(self.paths))

    def _scored(self, policy=None) -> Scored:
        policy = policy or self.policy
        key = ("scored", policy.components, tuple(policy.tier_bars.items()))
        return self._get(key, lambda: score(self._rankings(), self._metrics(), self._decisions(), policy))

    def rankings(self, frame: str = "polars"):
        """The current snapshot of the published rankings, in rank order."""
        return as_frame(self._rankings(), frame)

    def history(self, frame: str = "polars", supplier_ids: list[str] | None = None):
        """Every published snapshot of the rankings, stacked, oldest first."""
        stacked = self._history().sort("as_of_date", "rank_overall")
        if supplier_ids is not None:
            stacked = stacked.filter(pl.col("supplier_id").is_in(list(supplier_ids)))
        return as_frame(stacked, frame)

    def metrics(self, frame: str = "polars"):
        """The current snapshot's evidence: one row per supplier x metric x window."""
        return as_frame(self._metrics(), frame)

    def decisions(self, frame: str = "polars"):
        """The current snapshot's decision inputs: one row per supplier (account age, matured
        orders, buyer-cap share, decision reason, previous status...)."""
        return as_frame(self._decisions(), frame)

    def model(self) -> dict | None:
        """The registered risk model's metadata, backtest and latest drift; None without one."""
        return risk.model_info(self.paths)

    def config_matches(self) -> bool:
        """Whether the publication was produced by the config this object reads with."""
        return set(self._rankings()["config_hash"].unique().to_list()) == {self.config.config_hash}

    def scorecard(self, supplier_id: str, frame: str = "polars", progress=None) -> Scorecard:
        """Everything published about one supplier, with its reasons in words."""
        report = progress or (lambda stage, done, total: None)
        report("read", 0, 3)
        rankings = self._rankings()
        row = rankings.filter(pl.col("supplier_id") == supplier_id)
        if row.height == 0:
            raise ValueError(f"supplier {supplier_id!r} is not in the publication of {self.as_of} "
                             f"({rankings.height} suppliers under {self.paths.published})")
        try:
            metrics, decisions = self._metrics(), self._decisions()
        except NothingPublished:
            metrics = decisions = None
        report("read", 1, 3)
        scored = self._scored() if metrics is not None else None
        report("read", 2, 3)
        own = None if decisions is None else decisions.filter(pl.col("supplier_id") == supplier_id)
        history = self._cache.get("history")
        if history is None:  # one supplier's rows only: cheap however long the history
            history = store.read_history(self.paths, supplier_ids=[supplier_id])
        card = _scorecard.build(supplier_id, row.row(0, named=True), own.row(0, named=True) if own is not None
                                and own.height else None, metrics, None if scored is None else scored.components,
                                history, rankings["risk_probability"], self.policy, frame)
        if not self.config_matches():
            card.notes.append("the publication was produced with another config than the one read here: the "
                              "components and explanations use the config read here")
        report("read", 3, 3)
        return card

    def compare(self, supplier_ids: list[str], frame: str = "polars"):
        """One row per supplier: score, tier, decision, risk and the key rates over 90 and 365 days."""
        ids = list(supplier_ids)
        rows = self._rankings().filter(pl.col("supplier_id").is_in(ids))
        missing = sorted(set(ids) - set(rows["supplier_id"]))
        if missing:
            raise ValueError(f"not in the publication of {self.as_of}: {', '.join(missing)}")
        rates = (self._metrics().filter(pl.col("supplier_id").is_in(ids) & pl.col("metric").is_in(COMPARED_METRICS))
                 .with_columns(name=pl.col("metric") + "_rate_" + pl.col("window_days").cast(pl.String) + "d")
                 .pivot("name", index="supplier_id", values="rate"))
        columns = ("supplier_id", "supplier_name", "main_category", "rank_overall", "reliability_score",
                   "reliability_score_lower", "tier", "protection_status", "protection_limit_usd",
                   "risk_probability", "orders_365d", "gmv_usd_365d", "reason_codes")
        wide = rows.select(columns).join(rates, on="supplier_id", how="left")
        order = {s: i for i, s in enumerate(ids)}
        return as_frame(wide.sort(pl.col("supplier_id").replace_strict(order)), frame)

    def what_if(self, frame: str = "polars", weights: dict | None = None, half_at: dict | None = None,
                tier_bars: dict | None = None, **rules) -> WhatIf:
        """Re-decide protection on the current evidence under other rules, weights or bars."""
        policy = _what_if.with_overrides(self.policy, weights, half_at, tier_bars, **rules)
        decided = decide(self._rankings(), self._decisions(), self._scored(policy), policy, self.as_of)
        overrides = {**rules, **({"weights": weights} if weights else {}),
                     **({"half_at": half_at} if half_at else {}), **({"tier_bars": tier_bars} if tier_bars else {})}
        return _what_if.compare(self._rankings(), decided, overrides, frame)
