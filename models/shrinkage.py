"""Empirical-Bayes shrinkage of failure rates toward a cohort prior (beta-binomial).

Grain of `shrunk_rates`: one row per supplier x metric.

For each metric, a Beta(a0, b0) prior is fitted by the method of moments: its mean to
the suppliers of a cohort (category x country), falling back to the category and then to
all suppliers when the cohort has fewer than `min_suppliers` suppliers with evidence.
The between-supplier variance is the observed variance of the rates less the part
binomial noise explains, pooled over the cohorts of a level; the prior's strength
a0 + b0 follows from it and is clipped to [min_strength, max_strength]. A supplier with x failures in n trials then has the
posterior Beta(a0 + x, b0 + n - x): with no evidence it sits exactly at the prior mean,
with a wide bound. The bound is the posterior mean plus z posterior standard deviations
(a normal approximation of the Beta quantile, which keeps this portable across engines).
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
from ibis import _
from ibis.expr.types import Table

from models.relational import exact_sum, left_join_on

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
    """One row per metric x cohort key: the prior mean, strength and number of suppliers.

    Each cohort has its own mean; the strength is pooled over all cohorts of the level
    (one per metric), because a variance estimated from a few dozen suppliers is too noisy
    to trust cohort by cohort and would squash some cohorts' suppliers to their mean.
    """
    fitting = trials.filter(_.n >= settings.min_trials)
    by = ["metric", *keys]
    pooled = fitting.group_by(by).aggregate(suppliers=_.count(), x_sum=exact_sum(_.x), n_sum=exact_sum(_.n))
    pooled = pooled.mutate(mean=ibis.greatest(ibis.least(_.x_sum / _.n_sum, 0.999), 0.001))
    spread = fitting.join(pooled.select(*by, "mean"), by).mutate(dev=_.n * (_.x / _.n - _.mean) ** 2)
    spread = spread.group_by(by).aggregate(observed=exact_sum(_.dev) / exact_sum(_.n))
    fitted = pooled.join(spread, by).mutate(
        binomial_part=_.mean * (1 - _.mean) * _.suppliers / _.n_sum, variance_scale=_.mean * (1 - _.mean))
    # A one-supplier cohort has no spread to tell: it would only subtract binomial noise.
    ratio = fitted.filter(_.suppliers >= 2).group_by("metric").aggregate(
        scale=exact_sum(_.variance_scale * _.n_sum),
        between=ibis.greatest(exact_sum((_.observed - _.binomial_part) * _.n_sum), 1e-12))
    strength = ibis.least(ibis.greatest(_.scale / _.between - 1, settings.min_strength), settings.max_strength)
    per_metric = ratio.mutate(strength=strength).select("metric", "strength")
    return left_join_on(fitted, per_metric, "metric").mutate(
        strength=_.strength.fill_null(settings.min_strength)).select(*by, "suppliers", "mean", "strength")


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
    # No supplier with enough evidence anywhere (a new marketplace): the uniform Beta(1, 1).
    return chosen.mutate(
        prior_level=ibis.cases((_.cohort_mean.notnull(), "cohort"), (_.category_mean.notnull(), "category"),
                               (_.all_mean.notnull(), "all"), else_="uniform"),
        prior_mean=ibis.coalesce(_.cohort_mean, _.category_mean, _.all_mean, 0.5),
        prior_strength=ibis.coalesce(_.cohort_strength, _.category_strength, _.all_strength, 2.0),
    )


def beta_posterior(table: Table, prior_mean, prior_strength, z: float) -> Table:
    """Adds the posterior mean of the failure rate x/n under Beta(mean, strength), with its
    credible bounds (the upper one is the conservative one for a failure rate)."""
    a = prior_mean * prior_strength + table.x
    b = (1 - prior_mean) * prior_strength + (table.n - table.x)
    mean = a / (a + b)
    sd = (a * b / ((a + b) ** 2 * (a + b + 1))).sqrt()
    return table.mutate(shrunk_rate=mean, shrunk_rate_upper=ibis.least(mean + z * sd, 1.0),
                        shrunk_rate_lower=ibis.greatest(mean - z * sd, 0.0))


def posterior(with_prior: Table, z: float) -> Table:
    """The posterior of each supplier x metric under its own cohort prior."""
    return beta_posterior(with_prior, with_prior.prior_mean, with_prior.prior_strength, z)


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
