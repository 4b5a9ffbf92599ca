"""``trialcast``: one command, a thin shell over plain functions in features/, training/, serving/."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from features.offline import opt_out

opt_out()  # before any library loads: none reports home (features/offline.py)

app = typer.Typer(help="trialcast: forecast a new SKU's first-7-day sales and answer GO / REVIEW / NO_GO.",
                  no_args_is_help=True, pretty_exceptions_enable=False)


def _settings(**overrides):
    from features.config import Settings
    from features.threads import set_environment

    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    set_environment(settings.threads)  # before OpenMP / BLAS load: their pools start within budget
    return settings


def _input_file(path: Path, what: str = "file") -> Path:
    """A missing or unreadable input is reported at once, before any library or model loads (an
    OSError: ``main`` turns it into one ``error:`` line and exit status 2)."""
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    if not path.is_file():
        raise IsADirectoryError(f"{what} {path} is not a file")
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as error:
        raise PermissionError(f"{what} {path} cannot be read: {error.strerror or error}") from None
    return path


def _dump(obj) -> None:
    typer.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


@app.command()
def sample(
    out: Path = typer.Option(Path("sample"), help="Folder to write catalogue.parquet, candidates.csv and images/."),
    n: int = typer.Option(3000, min=50, help="Number of past SKUs."),
    seed: int = typer.Option(7, help="Random seed (same seed, same catalogue)."),
) -> None:
    """Write the SYNTHETIC sample catalogue (the embedded default)."""
    from features.sample import write_sample_catalogue

    path = write_sample_catalogue(out, n=n, seed=seed)
    typer.echo(f"wrote synthetic sample catalogue {path} ({n} SKUs) and {out / 'candidates.csv'}")


@app.command()
def embed(
    catalogue: Path = typer.Argument(..., help="Catalogue file (.parquet or .csv)."),
    engine: str = typer.Option(None, "--engine", help="Embedding on local, ray, or auto (Ray from TRIALCAST_RAY_MIN_EMBEDDINGS new vectors)."),
) -> None:
    """Validate a catalogue and fill the embedding cache; prints counts and rate."""
    import time

    _input_file(catalogue, "catalogue")

    from training.data import load_dataset

    settings = _settings(embed_engine=engine)
    start = time.perf_counter()
    data = load_dataset(catalogue, settings)
    seconds = time.perf_counter() - start
    typer.echo(f"{len(data.frame)} SKUs: {data.embeddings.computed} new vectors in {seconds:.1f}s "
               f"({len(data.frame) / seconds:.1f} SKUs/s); cache {settings.cache_path}")


@app.command(name="train")
def train_command(
    catalogue: Path = typer.Argument(..., help="History catalogue with sales (or with daily sales rows: sku_id, date, units)."),
    shuffle_target: bool = typer.Option(False, help="Train on shuffled targets (a deliberately useless model)."),
    engine: str = typer.Option(None, "--engine", help="Embedding and the independent fits on local, ray, or auto (embedding: Ray from TRIALCAST_RAY_MIN_EMBEDDINGS new vectors; fits: Ray with a cluster configured)."),
    sales: Path = typer.Option(None, "--sales", help="Daily sales (sku_id, date, units; one row per SKU and day): the first 7 days from each SKU's first day with sales are its target."),
    threads: int = typer.Option(None, "--threads", min=1, help="CPU threads of every pool (default: TRIALCAST_THREADS or 2)."),
) -> None:
    """Train, evaluate on the most recent launches, gate, log to MLflow and register."""
    _input_file(catalogue, "catalogue")
    if sales is not None:
        _input_file(sales, "daily sales file")
    from training.jobs import run_train

    _dump(run_train(catalogue, _settings(embed_engine=engine, train_engine=engine, threads=threads),
                    shuffle_target=shuffle_target, echo=typer.echo, sales=sales))


@app.command()
def retrain(
    catalogue: Path = typer.Argument(..., help="A new catalogue snapshot."),
    launches: bool = typer.Option(True, help="Add the launched SKUs whose first 7 days are in the forecast log."),
    engine: str = typer.Option(None, "--engine", help="Embedding and the independent fits on local, ray, or auto (embedding: Ray from TRIALCAST_RAY_MIN_EMBEDDINGS new vectors; fits: Ray with a cluster configured)."),
) -> None:
    """Scheduled retraining: the catalogue plus the forecast log's complete launches; embed only what
    is new, train, gate, promote; a no-op on a snapshot already trained."""
    _input_file(catalogue, "catalogue")
    from training.jobs import run_train

    _dump(run_train(catalogue, _settings(embed_engine=engine, train_engine=engine), retrain=True, launches=launches, echo=typer.echo))


@app.command()
def evaluate(
    catalogue: Path = typer.Argument(..., help="Catalogue holding launches newer than the model's training data."),
    alias: str = typer.Option("champion", help="Registry alias to evaluate."),
) -> None:
    """Score a registered model on launches it never saw; is its error still under the gate?"""
    _input_file(catalogue, "catalogue")
    from training.jobs import evaluate_registered

    _dump(evaluate_registered(catalogue, _settings(), alias))


@app.command()
def promote(
    version: str = typer.Argument(..., help="Model version to make champion (promotion or rollback)."),
    force: bool = typer.Option(False, help="Promote even a version the gate refused."),
) -> None:
    """Move the champion alias to a version."""
    from training.jobs import promote as promote_version

    _dump(promote_version(_settings(), version, force=force))


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """The registry's state: champion, its gate numbers, holdout and baseline metrics."""
    from training.status import (
        status as registry_status,  # SQL on the local store: no MLflow import
    )

    settings = _settings()
    state = registry_status(settings)
    state["live"] = _live_section(settings)
    if as_json:
        _dump(state)
        return
    champ = state.get("champion")
    if state.get("undecided"):  # a killed run registered them; the next train / retrain decides
        typer.echo(f"undecided versions {', '.join(state['undecided'])}: the next train / retrain decides them")
    if not champ and not state.get("advisory"):
        typer.echo(f"no model trained into this home yet ({state['tracking_uri']}): train on your sales history "
                   "with `trialcast train CATALOGUE`")
        return
    if not champ:  # the latest model its gate refused serves, every answer a REVIEW
        from training.gate import advice

        champ = state["advisory"]
        typer.echo(f"no champion: advisory v{champ['version']} serves (every answer REVIEW)")
        for line in advice(champ["gate"], champ["holdout"], champ["trained_on"]):
            typer.echo(f"  {line}")
    g = champ["gate"]
    role = "champion" if state.get("champion") else "advisory"
    typer.echo(f"{role} v{champ['version']}: {g['metric']} at the {g['level']} level, {g['stage']}: {g['value']:.1%} "
               f"(threshold {g['threshold']:.0%}), bias {g['bias']:+.1%} -> {'PASSED' if g['passed'] else 'REFUSED'}")
    typer.echo(f"  decisions: {_decisions(champ['holdout'])}")
    for name, m in champ["baselines"].items():
        if m:
            typer.echo(f"  baseline {name}: wape {m.get('wape', float('nan')):.1%}"
                       + (f"; decisions: {_decisions(m)}" if "go_precision" in m else ""))
    typer.echo(_live_line(state["live"], str(champ["version"])))


def _decisions(m: dict) -> str:
    """GO precision (the launch success rate), GO recall and REVIEW rate of holdout decisions."""
    nan = float("nan")
    return (f"GO precision {m.get('go_precision', nan):.0%} (launching everything: {m.get('base_rate', nan):.0%}), "
            f"GO recall {m.get('go_recall', nan):.0%}, REVIEW {m.get('review_rate', nan):.0%}")


def _live_section(settings) -> dict:
    """The live error per model version, from the forecast log (features.ledger.live). A default
    log that does not exist yet holds no forecast: nothing to import (SQLAlchemy, pandas) or create."""
    if settings.database_url is None and not (settings.home / "forecasts.sqlite").exists():
        return {}
    from features.ledger import open_ledger
    from features.ledger.live import live_by_version

    return live_by_version(open_ledger(settings), settings.gate_threshold, settings.live_min_launches)


def _live_line(live: dict, version: str) -> str:
    m = live.get(version)
    if not m or not m["n"]:
        return f"  live v{version}: no launch with 7 days of actuals yet (send them: `trialcast actuals FILE`)"
    band = m["wape_interval"]
    band_text = f" [90% {band[0]:.1%}, {band[1]:.1%}]" if band else ""
    go = f", GO precision {m['go_precision']:.0%} of {m['go_n']}" if m["go_n"] else ""
    state = "ABOVE THE GATE: answers go to REVIEW" if m["above_gate"] else "under the gate"
    return (f"  live v{version}: wape {m['wape']:.1%}{band_text} over {m['n']} launches, bias {m['bias']:+.1%}, "
            f"P10-P90 coverage {m['coverage']:.0%}{go} -> {state}")


@app.command()
def actuals(
    file: Path = typer.Argument(..., help="CSV/Parquet: sku_id or forecast_id, date, units (one row a day)."),
    mlflow: bool = typer.Option(True, help="Publish the live error per model version to MLflow afterwards."),
) -> None:
    """Record actual daily sales of launched SKUs (a day sent again replaces that day), then publish
    each model version's live error to MLflow (version tags live.*, a run in <model>-live)."""
    _input_file(file, "actuals file")
    from features.ledger import open_ledger
    from features.ledger.actuals import ingest, read_file

    settings = _settings()
    engine = open_ledger(settings)
    result = ingest(engine, read_file(file))
    if result["errors"]:
        for e in result["errors"]:
            typer.echo(f"row {e['row']}, {e['field']}: {e['reason']}", err=True)
        typer.echo(f"error: {len(result['errors'])} problems in {file}; nothing stored", err=True)
        raise typer.Exit(2)
    if mlflow:
        from features.ledger.live import live_by_version
        from features.ledger.monitor import publish_live

        live = live_by_version(engine, settings.gate_threshold, settings.live_min_launches)
        result["mlflow_versions"] = publish_live(settings, live)
    _dump(result)


@app.command()
def track(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Launched SKUs with actuals, day by day against the forecast: RESTOCK / SLOW / ON_TRACK and an
    updated forecast of the days left."""
    from features.ledger import open_ledger
    from features.ledger.track import tracking

    settings = _settings()
    rows = tracking(open_ledger(settings), settings.restock_threshold)
    if as_json:
        _dump(rows)
        return
    if not rows:
        typer.echo("no launched SKU with actuals yet (send them: `trialcast actuals FILE`)")
    for r in rows:
        typer.echo(f"{r['sku_id']} (forecast {r['forecast_id'][:8]}, v{r['model_version']}) day {r['days']}/7: "
                   f"{r['actual_to_date']:.0f} sold vs {r['forecast_to_date']:.0f} forecast to date "
                   f"(P10 path {r['p10_to_date']:.0f}) -> {r['signal']}; 7-day forecast {r['prior_7d']:.0f} -> "
                   f"{r['updated_7d']:.0f}")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(3000, help="Port to listen on."),
) -> None:
    """Start the go/no-go service (web page at /, API docs at /docs) on the registry's champion (with
    none, on the latest model its gate refused: advisory, every answer REVIEW)."""
    import sys

    settings = _settings()
    os.environ["TRIALCAST_HOME"] = str(settings.home.resolve())
    bentoml = Path(sys.executable).with_name("bentoml")
    command = [str(bentoml), "serve", "serving.service:Trialcast", "--host", host, "--port", str(port)]
    os.execv(command[0], command)


@app.command()
def score(
    candidates: Path = typer.Argument(..., help="Candidates table (.csv or .parquet); pictures by path under its folder."),
    out: Path = typer.Option(..., "--out", help="Where to write the scores (.parquet or .csv)."),
    chunk: int = typer.Option(64, "--chunk", min=1, help="Rows per resumable chunk (each saved under OUT.parts/)."),
    engine: str = typer.Option(None, "--engine", help="local, ray, or auto (Ray from TRIALCAST_RAY_MIN_ROWS rows)."),
) -> None:
    """Batch-score candidate SKUs with the champion; resumes a killed run, never drops a row."""
    _input_file(candidates, "candidates table")  # before the model loads (tens of seconds)
    from serving.batch import score_file
    from serving.champion import load_champion

    settings = _settings(score_engine=engine)
    predictor, message = load_champion(settings)
    if predictor is None:
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2)
    _dump(score_file(candidates, out, predictor, chunk=chunk))


@app.command()
def plan(
    candidates: Path = typer.Argument(..., help="Candidates table (.csv, .xlsx or .parquet, as `trialcast score` reads it)."),
    out: Path = typer.Option(..., "--out", help="Where to write the plan (.csv, .xlsx, .parquet or .json)."),
    budget_launches: int = typer.Option(None, "--budget-launches", min=1, help="Launch at most this many SKUs."),
    budget_capital: float = typer.Option(None, "--budget-capital", min=0.01, help="Spend at most this on first batches (cost x units)."),
) -> None:
    """Choose which candidates to launch and how many of each to make first, for the most expected
    margin within the budget; shown against launching all and picking by the analogs (kNN)."""
    _input_file(candidates, "candidates table")
    from serving.planning import budget_of, plan_file

    budget, problems = budget_of(budget_launches, budget_capital)
    if budget is None:
        raise ValueError("; ".join(f"{p['field']}: {p['reason']}" for p in problems))
    from serving.champion import load_champion

    predictor, message = load_champion(_settings())
    if predictor is None:
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2)
    _dump(plan_file(candidates, out, predictor, budget))


@app.command()
def demo(
    out: Path = typer.Option(Path("sample"), help="Where the sample catalogue goes."),
    port: int = typer.Option(3000, help="Port for the service."),
    serve_after: bool = typer.Option(True, "--serve/--no-serve", help="End by serving the champion."),
) -> None:
    """The main job on the embedded default: sample catalogue -> embed -> train and gate -> serve."""
    from features.sample import write_sample_catalogue
    from training.jobs import run_train

    settings = _settings()
    catalogue = out / "catalogue.parquet"
    if not catalogue.exists():
        write_sample_catalogue(out)
    typer.echo(f"SYNTHETIC sample catalogue: {catalogue.resolve()}")
    summary = run_train(catalogue, settings, retrain=True, echo=typer.echo)
    typer.echo(f"embedding cache: {settings.cache_path.resolve()}")
    typer.echo(f"MLflow store: {settings.mlflow_uri}  (browse: .venv/bin/mlflow ui --backend-store-uri {settings.mlflow_uri})")
    if not summary.get("noop"):
        g = summary["gate"]
        typer.echo(f"gate: {g['metric']} at the {g['level']} level, {g['stage']}: {g['value']:.1%} "
                   f"(must be < {g['threshold']:.0%}), bias {g['bias']:+.1%} "
                   f"-> {'PASSED' if g['passed'] else 'REFUSED'}; version {summary['version']} is {summary['alias']}")
    picture = next(iter(sorted((out / "images").glob("*.png"))), None)
    typer.echo(
        "\nTry it (in another terminal):\n"
        f"  curl -s -F image=@{picture.resolve() if picture else 'picture.png'} -F title='白色纯棉T恤 white cotton tee' "
        "-F description='夏季新款 宽松 oversize' -F cost_price=45 -F list_price=119 -F category=T恤 "
        f"http://127.0.0.1:{port}/predict\n"
        f"  web page: http://127.0.0.1:{port}/   API docs: http://127.0.0.1:{port}/docs\n"
        f"  batch: .venv/bin/trialcast score {out / 'candidates.csv'} --out scores.parquet\n"
    )
    if serve_after:
        serve(host="127.0.0.1", port=port)


def _is_user_error(error: BaseException) -> bool:
    """Bad input, a missing file, a refused action: things a user fixes, not bugs to debug."""
    return isinstance(error, (ValueError, OSError)) or type(error).__module__.split(".")[0] == "mlflow"


def main() -> None:
    """The console script. A user error ends in one line on stderr and exit status 2; anything else
    (a bug) keeps its traceback."""
    try:
        app()
    except Exception as error:
        if not _is_user_error(error):
            raise
        typer.echo(f"error: {error}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
