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
from datetime import date

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipelines.settings import ConfigError, DataPaths, load_config, resolve_data_dir
from pipelines.warehouse import WarehouseBusy

console = Console()
err_console = Console(stderr=True)


class Context:
    """What every command needs: the dataset's paths and the parsed config."""

    def __init__(self, data_dir: str | None, config_path: str | None):
        self.paths: DataPaths = resolve_data_dir(data_dir)
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
        except (ConfigError, WarehouseBusy, FileNotFoundError, ValueError) as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
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
    if report.count("rejected"):
        sys.exit(1)


def _print_ingest(report) -> None:
    console.print(
        f"Ingested {len(report.files)} new file(s): {report.count('loaded')} loaded, "
        f"{report.count('rejected')} rejected, {report.count('skipped')} skipped, "
        f"{report.count('duplicate')} duplicate; {report.rows_loaded:,} rows loaded, "
        f"{report.rows_quarantined:,} quarantined."
    )
    for entry in report.files:
        if entry["status"] in ("rejected", "skipped"):
            console.print(f"  [yellow]{entry['status']}[/] {entry['file_path']}: {entry['error']}",
                          highlight=False, markup=True)


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
    for name in ("load", "file", "status", "rows in", "loaded", "quarantined", "note"):
        ledger.add_column(name, overflow="fold")
    for f in state["files"]:
        ledger.add_row(f["load_id"], f["file_path"], f["status"], str(f["rows_in"]), str(f["rows_loaded"]),
                       str(f["rows_quarantined"]), f["error"] or "")
    console.print(ledger)
    layers = Table(title="Rows per table")
    layers.add_column("table")
    layers.add_column("rows", justify="right")
    for table, rows in state["tables"].items():
        layers.add_row(table, f"{rows:,}")
    console.print(layers)
    totals = state["totals"]
    console.print(f"{totals['files']} files; {totals['rows_in']:,} rows in = {totals['rows_loaded']:,} loaded "
                  f"+ {totals['rows_quarantined']:,} quarantined")


@main.command()
@click.option("--suppliers", default=300, show_default=True, help="Suppliers in the demo marketplace.")
@click.option("--days", default=365, show_default=True, help="Days of activity.")
@click.option("--seed", default=7, show_default=True)
@common_options
def demo(ctx: Context, suppliers: int, days: int, seed: int):
    """Generate a marketplace (if the data dir has none) and run the pipeline on it."""
    from pipelines.ingest import ingest as run_ingest
    from synthetic import MarketplaceParams, write_marketplace

    with progress_bar() as progress:
        if not any(ctx.paths.landing.glob("*/*")):
            params = MarketplaceParams(suppliers=suppliers, days=days, seed=seed, dirty_rate=0.002)
            summary = write_marketplace(ctx.paths.root, params, progress=progress)
            console.print(f"Generated {summary['orders']:,} orders from {suppliers} suppliers "
                          f"over {days} days in {summary['seconds']:.1f} s")
        report = run_ingest(ctx.paths, ctx.config, progress=progress)
    _print_ingest(report)


def _parse_date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a YYYY-MM-DD date", param_hint=option) from None


if __name__ == "__main__":
    main()
