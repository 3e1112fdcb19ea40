"""Empirical-Bayes shrinkage of failure rates toward a cohort prior (beta-binomial).

Grain of `shrunk_rates`: one row per supplier x metric.

For each metric, a Beta(a0, b0) prior is fitted by the method of moments to the
suppliers of a cohort (category x country), falling back to the category and then to all
suppliers when the cohort has fewer than `min_suppliers` suppliers with evidence. The
between-supplier variance is the observed variance of the rates less the part binomial
noise explains; the prior's strength a0 + b0 follows from it and is clipped to
[min_strength, max_strength]. A supplier with x failures in n trials then has the
posterior Beta(a0 + x, b0 + n - x): with no evidence it sits exactly at the prior mean,
with a wide bound. The bound is the posterior mean plus z posterior standard deviations
(a normal approximation of the Beta quantile, which keeps this portable across engines).
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
from ibis import _
from ibis.expr.types import Table

from models.relational import left_join_on

COHORT_LEVELS = (("cohort", ("main_category", "country_code")), ("category", ("main_category",)), ("all", ()))


@dataclass(frozen=True)
class PriorSettings:
    min_suppliers: int      # suppliers with evidence a cohort needs to have its own prior
    min_trials: float       # evidence a supplier needs to take part in fitting a prior
    min_strength: float
    max_strength: float
    bound_z: float          # z of the one-sided credible bound


def failures(metrics: Table, higher_is_better: dict[str, bool]) -> Table:
    """Per supplier x metric: failures x out of n (a success rate is turned into its failures)."""
    good = [name for name, flag in higher_is_better.items() if flag]
    return metrics.filter(_.metric.isin(list(higher_is_better))).mutate(
        n=_.denominator,
        x=ibis.cases((_.metric.isin(good), _.denominator - _.numerator), else_=_.numerator),
    )


def fit_priors(trials: Table, keys: tuple[str, ...], settings: PriorSettings) -> Table:
    """One row per metric x cohort key: the prior mean, strength and number of suppliers."""
    fitting = trials.filter(_.n >= settings.min_trials)
    by = ["metric", *keys]
    pooled = fitting.group_by(by).aggregate(
        suppliers=_.count(), x_sum=_.x.sum(), n_sum=_.n.sum())
    pooled = pooled.mutate(mean=ibis.greatest(ibis.least(_.x_sum / _.n_sum, 0.999), 0.001))
    spread = fitting.join(pooled.select(*by, "mean"), by).mutate(dev=_.n * (_.x / _.n - _.mean) ** 2)
    spread = spread.group_by(by).aggregate(observed=_.dev.sum() / _.n.sum())
    fitted = pooled.join(spread, by).mutate(
        between=ibis.greatest(_.observed - _.mean * (1 - _.mean) * _.suppliers / _.n_sum, 1e-9))
    strength = ibis.least(ibis.greatest(_.mean * (1 - _.mean) / _.between - 1, settings.min_strength),
                          settings.max_strength)
    return fitted.mutate(strength=strength).select(*by, "suppliers", "mean", "strength")


def attach_priors(trials: Table, suppliers: Table, settings: PriorSettings) -> Table:
    """Each supplier x metric with the prior of the narrowest cohort level that has enough suppliers."""
    with_cohort = trials.join(suppliers.select("supplier_id", "main_category", "country_code"), "supplier_id")
    chosen = with_cohort
    for level, keys in COHORT_LEVELS:
        priors = fit_priors(with_cohort, keys, settings)
        if level != "all":
            priors = priors.filter(_.suppliers >= settings.min_suppliers)
        renamed = priors.select("metric", *keys, **{f"{level}_mean": _.mean, f"{level}_strength": _.strength})
        chosen = left_join_on(chosen, renamed, ["metric", *keys])
    return chosen.mutate(
        prior_level=ibis.cases((_.cohort_mean.notnull(), "cohort"), (_.category_mean.notnull(), "category"), else_="all"),
        prior_mean=ibis.coalesce(_.cohort_mean, _.category_mean, _.all_mean),
        prior_strength=ibis.coalesce(_.cohort_strength, _.category_strength, _.all_strength),
    )


def posterior(with_prior: Table, z: float) -> Table:
    """Adds the posterior mean of the failure rate and its conservative (upper) bound."""
    a = with_prior.prior_mean * with_prior.prior_strength + with_prior.x
    b = (1 - with_prior.prior_mean) * with_prior.prior_strength + (with_prior.n - with_prior.x)
    mean = a / (a + b)
    sd = (a * b / ((a + b) ** 2 * (a + b + 1))).sqrt()
    return with_prior.mutate(shrunk_rate=mean, shrunk_rate_upper=ibis.least(mean + z * sd, 1.0))


def shrunk_rates(metrics: Table, suppliers: Table, higher_is_better: dict[str, bool],
                 settings: PriorSettings) -> Table:
    """Per supplier x metric: failures, trials, the prior used, and the shrunk failure rate with its bound.

    `suppliers` must list every supplier to score: one without any evidence gets x = n = 0.
    """
    trials = failures(metrics, higher_is_better).select("supplier_id", "metric", "x", "n")
    grid = ibis.union(*(suppliers.select("supplier_id", metric=ibis.literal(m)) for m in higher_is_better))
    complete = left_join_on(grid, trials, ["supplier_id", "metric"]).mutate(
        x=_.x.fill_null(0.0), n=_.n.fill_null(0.0))
    return posterior(attach_priors(complete, suppliers, settings), settings.bound_z)
