"""`suprel`: the command line. Parses options, calls the pipeline, draws the result.

Every command takes --data-dir (or SUPREL_DATA_DIR; default ./data) and --config (or
SUPREL_CONFIG; default config/suprel.yaml). Errors a user can cause are printed as one
clear sentence with exit code 2, never as a traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from pipelines.contract import SOURCES
from pipelines.settings import ConfigError, DataPaths, load_config, resolve_data_dir
from pipelines.publish import PublicationRefused
from pipelines.run import QualityGateFailed
from pipelines.runlock import RunInProgress
from pipelines.warehouse import WarehouseBusy

console = Console()
err_console = Console(stderr=True)


class Context:
    """What every command needs: the dataset's paths and the parsed config."""

    def __init__(self, data_dir: str | None, config_path: str | None):
        self.paths: DataPaths = resolve_data_dir(data_dir)
        self.config_path = config_path
        self.config = load_config(config_path)


def common_options(command):
    """--data-dir and --config on every command; errors turned into one clear line."""

    @click.option("--data-dir", envvar="SUPREL_DATA_DIR", default=None, metavar="DIR",
                  help="Dataset folder (landing/, warehouse/, published/, ...). Default ./data.")
    @click.option("--config", "config_path", envvar="SUPREL_CONFIG", default=None, metavar="FILE",
                  type=click.Path(dir_okay=False), help="YAML overlaying config/suprel.yaml.")
    @click.option("-v", "--verbose", is_flag=True, help="Log every step.")
    @functools.wraps(command)
    def wrapper(data_dir, config_path, verbose, **kwargs):
        logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s",
                            handlers=[RichHandler(console=err_console, show_path=False)])
        try:
            return command(Context(data_dir, config_path), **kwargs)
        except (ConfigError, WarehouseBusy, RunInProgress, PublicationRefused, QualityGateFailed,
                FileNotFoundError, ValueError) as exc:
            err_console.print(Text.assemble(("error: ", "bold red"), str(exc)), highlight=False)
            sys.exit(2)

    return wrapper


@contextmanager
def progress_bar():
    """A rich progress bar fed by the pipeline's `progress(stage, done, total)` callbacks."""
    with Progress(TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Supplier Reliability: reliability scores, risk and protection decisions for suppliers."""


@main.command()
@click.option("--suppliers", default=200, show_default=True, help="Number of suppliers.")
@click.option("--days", default=365, show_default=True, help="Days of activity.")
@click.option("--start", default="2024-01-01", show_default=True, help="First day, YYYY-MM-DD.")
@click.option("--seed", default=0, show_default=True, help="Random seed: same seed, same bytes.")
@click.option("--orders-per-supplier-day", default=0.6, show_default=True, help="Mean daily orders of a supplier.")
@click.option("--format", "file_format", default="csv", show_default=True,
              type=click.Choice(["csv", "csv.gz", "parquet", "jsonl"]), help="Landing file format.")
@click.option("--duplicate-rate", default=0.01, show_default=True, help="Share of rows sent twice.")
@click.option("--late-arrival-rate", default=0.02, show_default=True, help="Share of rows landing days late.")
@click.option("--dirty-rate", default=0.0, show_default=True, help="Share of extra corrupted rows.")
@click.option("--fraud-ring-share", default=0.02, show_default=True, help="Share of suppliers with a fake-order ring.")
@common_options
def generate(ctx: Context, start: str, file_format: str, **options):
    """Write a synthetic marketplace into <data-dir>/landing and its truth into <data-dir>/truth."""
    from synthetic import MarketplaceParams, write_marketplace

    params = MarketplaceParams(start=_parse_date(start, "--start"), file_format=file_format, **options)
    with progress_bar() as progress:
        summary = write_marketplace(ctx.paths.root, params, progress=progress)
    console.print(f"Generated {summary['orders']:,} orders from {params.suppliers:,} suppliers over "
                  f"{params.days} days into {ctx.paths.landing} ({summary['files']:,} files, "
                  f"{summary['seconds']:.1f} s)")


@main.command()
@common_options
def ingest(ctx: Context):
    """Load every new landing file into the warehouse (idempotent)."""
    from pipelines.ingest import ingest as run_ingest

    with progress_bar() as progress:
        report = run_ingest(ctx.paths, ctx.config, progress=progress)
    _print_ingest(report)
    if not report.passed:
        err_console.print(f"[bold red]error:[/] {len(report.critical)} critical data-quality failure(s): this run "
                          f"must not be scored or published. Details: `suprel quality`.", highlight=False)
        sys.exit(1)


def _print_ingest(report) -> None:
    console.print(
        f"Ingested {len(report.files)} new file(s): {report.count('loaded')} loaded, "
        f"{report.count('rejected')} rejected, {report.count('skipped')} skipped, "
        f"{report.count('duplicate')} duplicate; {report.rows_loaded:,} rows loaded, "
        f"{report.rows_quarantined:,} quarantined, {report.rows_pending:,} pending a reference."
    )
    for failure in report.critical + report.warnings:
        where = failure["file_path"] or failure["source"] or "run"
        console.print(f"  [{'red' if failure['severity'] == 'critical' else 'yellow'}]{failure['severity']}[/] "
                      f"{escape(where)} {failure['expectation']}: {escape(failure['observed_value'] or '')}",
                      highlight=False, markup=True)
    for entry in report.files:
        if entry["status"] in ("rejected", "skipped"):
            console.print(Text.assemble((entry["status"], "yellow"), f" {entry['file_path']}: {entry['error']}"))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@common_options
def status(ctx: Context, as_json: bool):
    """Show the load ledger and the row count of every warehouse table."""
    from pipelines.status import warehouse_status

    state = warehouse_status(ctx.paths)
    if as_json:
        click.echo(json.dumps(state, indent=2, default=str))
        return
    ledger = Table(title=f"Load ledger ({state['warehouse']})")
    for name in ("load", "file", "status", "rows in", "loaded", "quarantined", "pending", "note"):
        ledger.add_column(name, overflow="fold")
    for f in state["files"]:
        ledger.add_row(f["load_id"], Text(f["file_path"]), f["status"], str(f["rows_in"]), str(f["rows_loaded"]),
                       str(f["rows_quarantined"]), str(f["rows_pending"]), Text(f["error"] or ""))
    console.print(ledger)
    layers = Table(title="Rows per table")
    layers.add_column("table")
    layers.add_column("rows", justify="right")
    for table, rows in state["tables"].items():
        layers.add_row(table, f"{rows:,}")
    console.print(layers)
    totals = state["totals"]
    console.print(f"{totals['files']} files; {totals['rows_in']:,} rows in = {totals['rows_loaded']:,} loaded "
                  f"+ {totals['rows_quarantined']:,} quarantined + {totals['rows_pending']:,} pending")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option("--html", "as_html", is_flag=True, help="Also write the page <data-dir>/artifacts/quality.html.")
@common_options
def quality(ctx: Context, as_json: bool, as_html: bool):
    """Summarise the latest validation run: checks, quarantined rows by reason, pending, freshness."""
    from pipelines.quality import quality_summary, quarantined_rows
    from pipelines.quality_tables import summary_renderables

    summary = quality_summary(ctx.paths)
    if as_html:
        from pipelines.quality_page import write_page

        err_console.print(f"Wrote {write_page(ctx.paths, summary, quarantined_rows(ctx.paths, limit=200))}")
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    for renderable in summary_renderables(summary):
        console.print(renderable)


@main.command()
@click.option("--source", type=click.Choice(list(SOURCES)), help="Only this source.")
@click.option("--reason", default=None, help="Only this reason (e.g. bad_enum, orphan_reference).")
@click.option("--limit", default=50, show_default=True, help="At most this many rows, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@common_options
def quarantine(ctx: Context, source: str | None, reason: str | None, limit: int, as_json: bool):
    """List quarantined rows with their reason, original content and position (file:line)."""
    from pipelines.quality import quarantined_rows
    from pipelines.quality_tables import quarantine_table

    rows = quarantined_rows(ctx.paths, source, reason, limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    console.print(quarantine_table(rows))


@main.command()
@click.option("--suppliers", default=300, show_default=True, help="Suppliers in the demo marketplace.")
@click.option("--days", default=365, show_default=True, help="Days of activity.")
@click.option("--seed", default=7, show_default=True)
@common_options
def demo(ctx: Context, suppliers: int, days: int, seed: int):
    """Generate a marketplace (if the data dir has none), run the daily refresh, show the top."""
    from synthetic import MarketplaceParams, write_marketplace

    if not any(ctx.paths.landing.glob("*/*")):
        with progress_bar() as progress:
            params = MarketplaceParams(suppliers=suppliers, days=days, seed=seed, dirty_rate=0.002)
            summary = write_marketplace(ctx.paths.root, params, progress=progress)
        console.print(f"Generated {summary['orders']:,} orders from {suppliers} suppliers "
                      f"over {days} days in {summary['seconds']:.1f} s")
    _refresh(ctx, as_of=None, force_reason=None, wait=0)


def _refresh(ctx: Context, as_of: str | None, force_reason: str | None, wait: float) -> None:
    from pipelines.flows import daily_refresh

    console.print("Running the daily refresh (Prefect; the first flow in a process starts a local server)...")
    outcome = daily_refresh(data_dir=str(ctx.paths.root), config_path=ctx.config_path, as_of=as_of,
                            force_reason=force_reason, wait_seconds=wait)
    console.print(Text(outcome.message))
    _print_changes(outcome.changes)
    _print_top(ctx.paths)


def _print_changes(changes: list[dict]) -> None:
    gained = [c for c in changes if c["is_protected"]]
    lost = [c for c in changes if not c["is_protected"]]
    console.print(f"Eligibility changes: {len(gained)} gained protection, {len(lost)} lost it.")
    for c in (gained + lost)[:10]:
        verb = "gained" if c["is_protected"] else "lost"
        console.print(Text(f"  {c['supplier_id']} {verb} ({c['previous_status']} -> {c['protection_status']}): "
                           f"{', '.join(c['reason_codes'] or [])}"))


def _print_top(paths, limit: int = 15) -> None:
    """The top of the current publication, as marketplace search would read it."""
    import pyarrow.parquet as pq

    published = paths.published / "supplier_rankings.parquet"
    rows = pq.read_table(published).slice(0, limit).to_pylist()
    table = Table(title=f"Most reliable suppliers as of {rows[0]['as_of_date'] if rows else '-'} ({published})")
    for name in ("rank", "supplier", "category", "score", "lower", "tier", "protection", "limit USD", "reasons"):
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(str(row["rank_overall"]), Text(row["supplier_name"] or row["supplier_id"]),
                      Text(row["main_category"] or ""), f"{row['reliability_score']:.1f}",
                      f"{row['reliability_score_lower']:.1f}", row["tier"], row["protection_status"],
                      f"{row['protection_limit_usd']:,.0f}", ", ".join(row["reason_codes"]))
    console.print(table)


@main.command()
@click.option("--as-of", "as_of", default=None, metavar="DATE",
              help="Refresh as of this day. Default: yesterday, or the newest day of the data if older.")
@click.option("--force-reason", default=None, metavar="TEXT",
              help="Publish even if the gate refuses (too many protection changes); the reason is recorded.")
@click.option("--wait", default=0.0, show_default=True, help="Seconds to wait for a run in progress.")
@common_options
def run(ctx: Context, as_of: str | None, force_reason: str | None, wait: float):
    """The daily refresh: ingest, validate, score, predict, publish (a Prefect flow run)."""
    if as_of:
        _parse_date(as_of, "--as-of")
    _refresh(ctx, as_of, force_reason, wait)


@main.command()
@click.option("--from", "first", required=True, metavar="DATE", help="First as-of day.")
@click.option("--to", "last", required=True, metavar="DATE", help="Last as-of day.")
@click.option("--force-reason", default=None, metavar="TEXT", help="Publish through gate refusals, recorded.")
@common_options
def backfill(ctx: Context, first: str, last: str, force_reason: str | None):
    """Score and publish every day of a range; a second call resumes where the first stopped."""
    from pipelines.flows import backfill as backfill_flow

    _parse_date(first, "--from"), _parse_date(last, "--to")
    outcome = backfill_flow(first, last, data_dir=str(ctx.paths.root), config_path=ctx.config_path,
                            force_reason=force_reason)
    console.print(Text(outcome.message))


@main.command()
@common_options
def serve(ctx: Context):
    """Serve the flows on their schedules (daily refresh 02:00 UTC, weekly retrain, hourly ingest)
    with a long-running process: the one-command alternative to a work pool and worker."""
    from pipelines.flows import serve_schedules

    console.print("Serving the scheduled flows; Ctrl-C stops. Needs a Prefect server (PREFECT_API_URL).")
    serve_schedules(str(ctx.paths.root), ctx.config_path)


@main.command()
@click.option("--as-of", "as_of", default=None, metavar="DATE",
              help="Score as of this day (YYYY-MM-DD). Default: the newest day in the data.")
@click.option("--to", "to", default=None, metavar="DATE", help="Backfill every day from --as-of to this one.")
@common_options
def score(ctx: Context, as_of: str | None, to: str | None):
    """Compute and store supplier scores, tiers and protection decisions for a date (or a range).

    With a registered risk model, its per-supplier risk and version go into the scores."""
    from pipelines.risk.predict import score_with_risk
    from pipelines.scoring import latest_data_day

    first = _parse_date(as_of, "--as-of") if as_of else latest_data_day(ctx.paths)
    last = _parse_date(to, "--to") if to else first
    if last < first:
        raise click.BadParameter("--to is before --as-of", param_hint="--to")
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    run_id = "score-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    with progress_bar() as progress:
        for done, day in enumerate(days):
            progress("score", done, len(days))
            result, predicted = score_with_risk(ctx.paths, ctx.config, day, run_id)
        progress("score", len(days), len(days))
    console.print(f"Scored {result.suppliers:,} suppliers as of {last}"
                  + (f" (backfilled {len(days)} days from {first})" if len(days) > 1 else ""))
    _print_risk(predicted)


@main.command()
@click.option("--as-of", "as_of", default=None, metavar="DATE", help="Scores of this day. Default: the newest scored.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def evaluate(ctx: Context, as_of: str | None, as_json: bool):
    """Compare stored scores with a generated marketplace's ground truth, and with two naive peers."""
    from pipelines.evaluate import evaluate as run_evaluate

    report = run_evaluate(ctx.paths, ctx.config, _parse_date(as_of, "--as-of") if as_of else None)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    table = Table(title=f"Scores against the truth, as of {report['as_of_date']} ({report['suppliers']} suppliers)")
    table.add_column("figure")
    for system in report["systems"]:
        table.add_column(system, justify="right")
    systems = list(report["systems"].values())
    rows = [("Spearman, all", "spearman_all"), ("Spearman, 20+ matured", "spearman_20_plus"),
            ("suspended", "suspended"), ("precision vs worst decile", "precision_suspended_vs_worst_decile"),
            ("recall vs worst decile", "recall_suspended_vs_worst_decile"),
            ("good suppliers suspended", "good_suppliers_suspended_share")]
    for label, key in rows:
        table.add_row(label, *(str(s[key]) for s in systems))
    for band in systems[0]["spearman_by_band"]:
        table.add_row(f"Spearman, {band} matured ({systems[0]['spearman_by_band'][band]['suppliers']})",
                      *(str(s["spearman_by_band"][band]["spearman"]) for s in systems))
    console.print(table)
    rings = report["fraud_rings"]
    console.print(f"Fraud-ring suppliers: {rings['suppliers']}, not eligible: {rings['not_eligible_share']} "
                  f"({rings['by_status']})")


@main.command()
@click.option("--as-of", "as_of", default=None, metavar="DATE",
              help="Train on what was known at the end of this day. Default: the newest day in the data.")
@click.option("--no-backtest", is_flag=True, help="Skip the backtest of the same settings (faster).")
@click.option("--json", "as_json", is_flag=True, help="Print the model's metadata and figures as JSON.")
@common_options
def train(ctx: Context, as_of: str | None, no_backtest: bool, as_json: bool):
    """Train the risk model on the orders matured by a date, backtest it, register it as current."""
    from pipelines.risk.train import train as run_train
    from pipelines.scoring import latest_data_day

    day = _parse_date(as_of, "--as-of") if as_of else latest_data_day(ctx.paths)
    with progress_bar() as progress:
        meta = run_train(ctx.paths, ctx.config, day, run_backtest=not no_backtest, progress=progress)
    report = ctx.paths.artifacts / "models" / meta["model_version"] / "report.html"
    if as_json:
        click.echo(json.dumps({**{k: v for k, v in meta.items() if k != "reference"}, "report": str(report)},
                              indent=2, default=str))
        return
    w = meta["training"]
    console.print(Text(f"Registered risk model {meta['model_version']} ({meta['estimator']}) as current: "
                       f"{w['orders']:,} orders placed {w['first_placed_on']}..{w['last_placed_on']}, matured by "
                       f"{w['as_of']}, defect rate {w['defect_rate']:.4f}."))
    if meta["backtest"]:
        _print_backtest(meta["backtest"])
    console.print(Text(f"Report: {report}"))


@main.command()
@click.option("--as-of", "as_of", default=None, metavar="DATE",
              help="Evaluation day: test labels as known at its end. Default: the newest day in the data.")
@click.option("--folds", default=None, type=click.IntRange(min=1), help="Folds (default: risk.backtest.folds).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@common_options
def backtest(ctx: Context, as_of: str | None, folds: int | None, as_json: bool):
    """Rolling-origin backtest of the risk model against baselines (and the truth, on generated data)."""
    from pipelines.risk.backtest import run_backtest
    from pipelines.risk.report import write_backtest
    from pipelines.scoring import latest_data_day

    day = _parse_date(as_of, "--as-of") if as_of else latest_data_day(ctx.paths)
    with progress_bar() as progress:
        figures = run_backtest(ctx.paths, ctx.config, day, folds, progress=progress)
    report = write_backtest(ctx.paths.artifacts, figures)
    if as_json:
        click.echo(json.dumps({**figures, "report": str(report)}, indent=2))
        return
    _print_backtest(figures)
    console.print(Text(f"Report: {report}"))


def _print_backtest(figures: dict) -> None:
    table = Table(title=f"Backtest, {len(figures['folds'])} folds, evaluated {figures['evaluation_date']} "
                        f"(pooled test orders)")
    for name in ("system", "AUC", "Brier", "log loss", "ECE", "mean predicted", "observed"):
        table.add_column(name, justify="left" if name == "system" else "right", overflow="fold")
    for name, f in figures["pooled"].items():
        style = "bold" if name == figures["model"] else None
        table.add_row(name, *(f"{f[k]:.{5 if k == 'brier' else 4}f}" if f[k] is not None else "-" for k in
                              ("auc", "brier", "log_loss", "ece", "mean_predicted", "defect_rate")), style=style)
    console.print(table)
    t = figures["targets"]
    share = t["auc_lift_share_of_truth"]
    console.print(Text(f"Targets for {figures['model']}: AUC lift share of truth "
                       f"{'-' if share is None else f'{share:.3f}'} (>= 0.9), ECE {t['ece']:.4f} (< 0.01), "
                       f"beats every baseline on AUC and Brier: {'yes' if t['beats_every_baseline'] else 'no'}"))


def _print_risk(predicted) -> None:
    """Which risk went into the scores, and the drift warning when the model should be retrained."""
    if predicted is None:
        console.print("No risk model registered: risk_probability is the shrunk 365-day order-defect rate "
                      "(`suprel train` registers one).")
        return
    drift = predicted.drift
    line = f"Risk from model {predicted.model_version}"
    if drift:
        worst = max(drift["feature_psi"], key=drift["feature_psi"].get)
        line += (f"; drift over {drift['orders']:,} recent orders: prediction PSI {drift['prediction_psi']:.3f}, "
                 f"largest feature PSI {drift['feature_psi'][worst]:.3f} ({worst})")
    console.print(Text(line))  # above the threshold, the scoring run has logged its warning


@main.command()
@click.argument("supplier_id")
@click.option("--json", "as_json", is_flag=True, help="Print the scorecard as JSON.")
@common_options
def explain(ctx: Context, supplier_id: str, as_json: bool):
    """One supplier's scorecard from the publication: metrics over 90 and 365 days (numerator,
    denominator, target, status), score components, tier, decision, reasons in words, risk, history."""
    from pipelines.analyst import Published
    from pipelines.analyst.terminal import scorecard_renderables

    with progress_bar() as progress:
        card = Published(ctx.paths.root, ctx.config_path).scorecard(supplier_id, progress=progress)
    if as_json:
        click.echo(json.dumps(card.to_dict(), indent=2, default=str))
        return
    for renderable in scorecard_renderables(card):
        console.print(renderable)


@main.command()
@click.option("--output", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="Where to write the page. Default: <data-dir>/artifacts/report.html.")
@common_options
def report(ctx: Context, output: str | None):
    """A self-contained HTML page on the last run: data quality, ingestion counts, score and risk
    distributions, tiers, eligibility changes with reasons, top movers, calibration. Opens offline."""
    from pipelines.analyst import Published
    from pipelines.report import write_report

    with progress_bar() as progress:
        page = write_report(Published(ctx.paths.root, ctx.config_path), output, progress)
    console.print(Text(f"Wrote {page}"))


def _parse_date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a YYYY-MM-DD date", param_hint=option) from None


if __name__ == "__main__":
    main()
