"""The HTTP routes that are not model APIs: the merchandiser page, analog thumbnails, model facts,
the API docs page and batch jobs (CSV + zip of pictures). Mounted into the BentoML service."""

from __future__ import annotations

import io
import re
import shutil
import threading
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Body, FastAPI, File, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response

from features.config import Settings
from serving.predictor import Predictor

WEB_DIR = Path(__file__).resolve().parent / "web"
SKU_PATTERN = re.compile(r"^[\w.\-]{1,200}$")
MAX_ZIP_FILES = 20_000
MAX_UNZIPPED_BYTES = 2 * 1024**3


@dataclass
class ServiceState:
    """What the routes need from the running service (set in the service's ``__init__``)."""

    predictor: Predictor | None = None
    message: str = "starting"
    settings: Settings | None = None
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)


state = ServiceState()
app = FastAPI(title="trialcast web", docs_url=None, redoc_url=None, openapi_url=None)


def error(status: int, field_name: str, reason: str) -> JSONResponse:
    """Same shape as BentoML's validation errors, so clients parse one format."""
    return JSONResponse({"error": reason, "detail": [{"loc": [field_name], "msg": reason, "type": "invalid_input"}]},
                        status_code=status)


def not_ready() -> JSONResponse:
    return JSONResponse({"error": "not_ready", "message": state.message}, status_code=503)


@app.get("/", include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html")


@app.get("/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    path = (WEB_DIR / name).resolve()
    if not path.is_relative_to(WEB_DIR) or not path.is_file():
        return error(404, "name", f"no asset {name!r}")
    return FileResponse(path)


@app.get("/docs", include_in_schema=False)
def api_docs() -> FileResponse:
    # Our page owns "/", which is where BentoML puts its Swagger UI; serve that UI here instead.
    import _bentoml_impl.server as bentoml_server

    return FileResponse(Path(bentoml_server.__file__).parent / "main-openapi.html", media_type="text/html")


@app.get("/model", summary="Facts about the serving model (version, gate, training size)")
def model() -> JSONResponse:
    if state.predictor is None:
        return JSONResponse({"ready": False, "message": state.message}, status_code=200)
    return JSONResponse({"ready": True, **state.predictor.model_facts(), "live": state.predictor.log.live()})


@app.post("/actuals", summary="Actual daily sales of launched SKUs (idempotent: a day sent again replaces it)")
def post_actuals(body: dict[str, Any] = Body(..., examples=[{"rows": [
        {"sku_id": "S01234", "date": "2025-06-01", "units": 12}]}])) -> JSONResponse:
    """``{"rows": [{"sku_id" or "forecast_id", "date", "units"}, ...]}``: stored all or nothing;
    422 names every bad row (row, field, reason); SKUs without a served forecast come back in
    ``unmatched`` (stored all the same)."""
    from features.ledger import open_ledger
    from features.ledger.actuals import ingest

    if state.settings is None:
        return not_ready()
    rows = body.get("rows") if isinstance(body, dict) else None
    if not isinstance(rows, list):
        return error(422, "rows", "send {\"rows\": [...]} with one object per SKU and day")
    result = ingest(open_ledger(state.settings), rows)
    if result["errors"]:
        return JSONResponse({"error": f"{len(result['errors'])} problems; nothing stored", **result,
                             "detail": [{"loc": ["rows", e["row"], e["field"]], "msg": e["reason"],
                                         "type": "invalid_input"} for e in result["errors"]]}, status_code=422)
    if state.predictor is not None:
        state.predictor.log.refresh()  # the next answer reads the live error with these sales in
    threading.Thread(target=_publish_live, args=(state.settings,), daemon=True).start()
    return JSONResponse(result)


def _publish_live(settings: Settings) -> None:
    """The live error to MLflow (features.ledger.monitor), off the request: MLflow being down must
    not fail an upload of actuals, which is already stored."""
    import logging

    from features.ledger import open_ledger
    from features.ledger.live import live_by_version
    from features.ledger.monitor import publish_live

    try:
        publish_live(settings, live_by_version(open_ledger(settings), settings.gate_threshold,
                                               settings.live_min_launches))
    except Exception:  # logged; the next upload publishes again
        logging.getLogger("trialcast.ledger").exception("could not publish the live error to MLflow")


@app.get("/track", include_in_schema=False)
def track_page() -> FileResponse:
    return FileResponse(WEB_DIR / "track.html", media_type="text/html")


@app.get("/launches", summary="Launched SKUs day by day against their forecast, and the live error per version")
def launches() -> JSONResponse:
    """``{"live": {version: live error}, "launches": [...]}``: each launched SKU with actuals, its
    daily actual and forecast units, RESTOCK / SLOW / ON_TRACK and the updated 7-day forecast (the
    rows of `trialcast track`)."""
    from features.ledger import open_ledger
    from features.ledger.live import live_by_version
    from features.ledger.track import tracking

    if state.settings is None:
        return not_ready()
    engine, s = open_ledger(state.settings), state.settings
    return JSONResponse({"live": live_by_version(engine, s.gate_threshold, s.live_min_launches),
                         "serving_version": None if state.predictor is None else str(state.predictor.version),
                         "restock_threshold": s.restock_threshold,
                         "launches": tracking(engine, s.restock_threshold)})


@app.get("/analogs/{sku_id}.jpg", summary="Thumbnail of a past SKU shown as an analog",
         responses={200: {"content": {"image/jpeg": {}}}, 404: {}})
def analog_thumbnail(sku_id: str) -> Response:
    if state.predictor is None:
        return not_ready()
    picture = state.predictor.bundle.thumbnails.get(sku_id) if SKU_PATTERN.match(sku_id) else None
    if picture is None:
        return error(404, "sku_id", f"no picture for past SKU {sku_id!r}")
    return Response(picture, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})


def _safe_extract(archive: bytes, folder: Path) -> int:
    """Unzip pictures into ``folder``, refusing paths that escape it and archives that explode."""
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        if len(members) > MAX_ZIP_FILES:
            raise ValueError(f"the zip holds {len(members):,} files, over the limit of {MAX_ZIP_FILES:,}")
        if sum(m.file_size for m in members) > MAX_UNZIPPED_BYTES:
            raise ValueError("the zip unpacks to more than 2 GiB")
        for m in members:
            target = (folder / m.filename).resolve()
            if not target.is_relative_to(folder.resolve()):
                raise ValueError(f"the zip entry {m.filename!r} escapes its folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(m) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return len(members)


def _run_job(job_id: str, csv_path: Path, out: Path) -> None:
    from serving.batch import score_file

    job = state.jobs[job_id]

    def progress(done: int, total: int) -> None:
        job.update(done=done, total=total)

    try:
        summary = score_file(csv_path, out, state.predictor, progress=False, on_progress=progress)
        import pandas as pd

        result = pd.read_csv(out, dtype=str, keep_default_na=False)
        failed = result[result["error"].fillna("") != ""]
        job.update(status="done", summary=summary, failed=[
            {"row": int(i) + 1, "sku_id": r.get("sku_id", ""), "error": r["error"]} for i, r in failed.iterrows()
        ])
    except Exception as exc:  # a job must report its failure, never take the server down
        job.update(status="failed", message=str(exc))


@app.post("/batch", summary="Start scoring a candidates CSV (+ optional zip of pictures)")
async def start_batch(candidates: UploadFile = File(...), pictures: UploadFile | None = File(None)) -> JSONResponse:
    if state.predictor is None or state.settings is None:
        return not_ready()
    job_id = uuid.uuid4().hex[:12]
    folder = state.settings.home / "batch_jobs" / job_id
    folder.mkdir(parents=True, exist_ok=True)
    data = await candidates.read()
    if not data.strip():
        return error(422, "candidates", "the candidates file is empty")
    csv_path = folder / "candidates.csv"
    csv_path.write_bytes(data)
    if pictures is not None and pictures.filename:
        try:
            _safe_extract(await pictures.read(), folder)
        except (zipfile.BadZipFile, ValueError) as exc:
            return error(422, "pictures", f"not a usable zip of pictures: {exc}")
    try:
        from features.catalogue import read_table

        rows = len(read_table(csv_path))
    except Exception as exc:
        return error(422, "candidates", f"not a readable CSV: {exc}")
    state.jobs[job_id] = {"id": job_id, "status": "running", "done": 0, "total": rows, "failed": []}
    threading.Thread(target=_run_job, args=(job_id, csv_path, folder / "scores.csv"), daemon=True).start()
    return JSONResponse(state.jobs[job_id], status_code=202)


@app.get("/batch/{job_id}", summary="Progress of a batch job")
def batch_status(job_id: str) -> JSONResponse:
    job = state.jobs.get(job_id)
    if job is None:
        return error(404, "job_id", f"no batch job {job_id!r}")
    return JSONResponse(job)


@app.get("/batch/{job_id}/scores.csv", summary="Download the scored candidates")
def batch_result(job_id: str) -> Response:
    job = state.jobs.get(job_id)
    if job is None or job.get("status") != "done" or state.settings is None:
        return error(404, "job_id", f"no finished batch job {job_id!r}")
    return FileResponse(state.settings.home / "batch_jobs" / job_id / "scores.csv", media_type="text/csv",
                        filename=f"trialcast-scores-{job_id}.csv")
