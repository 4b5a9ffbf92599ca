"""The HTTP routes that are not model APIs: the merchandiser page, analog thumbnails, model facts,
the API docs page and batch jobs (CSV + zip of pictures). Mounted into the BentoML service."""

from __future__ import annotations

import io
import logging
import re
import secrets
import shutil
import threading
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Body, FastAPI, File, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response

from features import messages
from features.config import Settings
from serving.contract import JOB, ROWS
from serving.jobs import TABLE_SUFFIXES
from serving.predictor import Predictor

WEB_DIR = Path(__file__).resolve().parent / "web"
SKU_PATTERN = re.compile(r"^[\w.\-]{1,200}$")
JOB_PATTERN = re.compile(r"^[0-9a-f]{32}$")  # job and forecast ids: 128 random bits as hex
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
JOB_ANSWER = {"content": {"application/json": {"schema": JOB}}}
NOT_FINISHED = {409: {"description": "The job is not finished"}}


@dataclass
class ServiceState:
    """What the routes need from the running service (set in the service's ``__init__``)."""

    predictor: Predictor | None = None
    message: str = "starting"
    settings: Settings | None = None
    runner: Any = None  # serving.jobs.JobRunner, started once


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
def api_docs() -> Response:
    """trialcast's own API page (it renders ``/docs.json``); nothing is loaded from another host."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("trialcast")
    except PackageNotFoundError:
        release = "unknown"
    page = (WEB_DIR / "docs.html").read_text(encoding="utf-8").replace("{{version}}", release)
    return Response(page, media_type="text/html")


@app.get("/messages.json", include_in_schema=False)
def message_catalogue() -> JSONResponse:
    """The message catalogue (``features/messages.json``): the page renders every word from it."""
    return JSONResponse(messages.catalogue(), headers={"Cache-Control": "no-cache"})


@app.get("/model", summary="Facts about the serving model (version, gate, training size)")
def model() -> JSONResponse:
    if state.predictor is None:
        return JSONResponse({"ready": False, "message": state.message}, status_code=200)
    from serving.localise import history_span

    span = history_span()
    return JSONResponse({"ready": True, **state.predictor.model_facts(), "live": state.predictor.log.live(),
                         "currency": state.settings.currency if state.settings else "¥",
                         "history": {"first_launch": span[0].isoformat(), "last_launch": span[1].isoformat()}
                         if span else None})


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


# ---------------------------------------------------------------- batch jobs (serving/jobs.py)
TEMPLATE_COLUMNS = ("sku_id", "launch_date", "category", "title", "description", "image", "cost_price",
                    "list_price", "channel")
_runner_lock = threading.Lock()


class Refused(Exception):
    """An upload refused before a job exists: HTTP status, field, message code and parameters."""

    def __init__(self, status: int, field_name: str, code: str, **params: Any):
        super().__init__(code)
        self.status, self.field, self.code, self.params = status, field_name, code, params


def owner_of(request: Request) -> str | None:
    """The caller's identity as ``serving.limits.Exposure`` named it (None: not known)."""
    from serving.limits import OWNER_KEY

    return request.scope.get(OWNER_KEY)


def lang_of(request: Request) -> str:
    return messages.language(request.headers.get("accept-language"), request.query_params.get("lang"))


def refusal(status: int, field_name: str, code: str, lang: str, headers: dict[str, str] | None = None,
            **params: Any) -> JSONResponse:
    """An error of the page's own routes: code and parameters, the sentence in ``lang``."""
    text = messages.reason_text(code, params, lang)
    return JSONResponse({"error": text, "code": code, "lang": lang, "detail": [
        {"loc": [field_name], "msg": text, "code": code, "params": params, "type": "invalid_input"}]},
        status_code=status, headers=headers)


def runner() -> Any:
    """The job runner, started once (by the service at start-up, or by the first batch request)."""
    from serving.jobs import JobRunner

    with _runner_lock:
        if state.runner is None and state.settings is not None:
            state.runner = JobRunner(state.settings, lambda: state.predictor)
            state.runner.start()
        return state.runner


def start_jobs() -> None:
    """Called when the service starts: unfinished jobs resume without waiting for a request."""
    try:
        runner()
    except Exception:  # the jobs must never keep the service from starting
        logging.getLogger("trialcast.jobs").exception("could not start the batch job runner")


def _human_bytes(n: int) -> str:
    return f"{n / 1024**2:,.0f} MB" if n < 1024**3 else f"{n / 1024**3:,.1f} GB"


def _save(upload: Any, target: Path, limit: int, field_name: str) -> int:
    """Copy an upload to ``target`` in pieces, refusing it as soon as it passes ``limit`` bytes."""
    written = 0
    upload.file.seek(0)
    with open(target, "wb") as out:
        while piece := upload.file.read(1024 * 1024):
            written += len(piece)
            if written > limit:
                raise Refused(413, field_name, "batch_too_big", size=f"> {_human_bytes(limit)}", limit=_human_bytes(limit))
            out.write(piece)
    return written


def _extract(archive: Path, folder: Path, settings: Settings, budget: int) -> int:
    """Unzip the pictures into ``folder`` streaming each entry, counting the bytes really written
    (not the sizes the archive claims) against the limits; refuses paths that escape the folder."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise Refused(422, "pictures", "zip_bad", reason=type(exc).__name__ if "/" in str(exc) else str(exc)) from None
    limit = settings.batch_max_unzipped_bytes
    count, written = 0, 0
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
        if len(members) > budget:
            raise Refused(413, "pictures", "zip_too_many_files", n=f"{len(members):,}", limit=f"{budget:,}")
        for member in members:
            target = (folder / member.filename).resolve()
            if not target.is_relative_to(folder.resolve()):
                raise Refused(422, "pictures", "zip_escape", value=repr(member.filename))
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(member) as src, open(target, "wb") as dst:
                    while piece := src.read(1024 * 1024):
                        written += len(piece)
                        if written > limit:
                            raise Refused(413, "pictures", "zip_too_big", limit=_human_bytes(limit))
                        dst.write(piece)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError) as exc:
                raise Refused(422, "pictures", "zip_bad", reason=f"{member.filename}: {exc}") from None
            count += 1
    archive.unlink()
    return count


def _picture_name(name: str | None, seen: set[str]) -> str:
    base = Path(str(name or "picture").replace("\\", "/")).name
    base = re.sub(r"[^\w.\-]", "_", base)[:120] or "picture"
    while base in seen or base.startswith("."):
        base = f"_{base}"
    seen.add(base)
    return base


def _table_summary(table: Path, settings: Settings, pictures: int) -> dict[str, Any]:
    """Read the uploaded table once: its size, how it was read; refuse what cannot become a job."""
    from features.catalogue import CatalogueError, missing_columns, read_table_format

    try:
        frame, fmt = read_table_format(table)
    except CatalogueError as exc:
        raise Refused(422, "candidates", "batch_unreadable", reason=exc.problems[0].reason) from None
    except Exception as exc:  # noqa: BLE001  pandas / openpyxl say why in their own words
        from serving.jobs import scrub_paths

        raise Refused(422, "candidates", "batch_unreadable",
                      reason=scrub_paths(f"{type(exc).__name__}: {str(exc)[:200]}")) from None
    if frame.empty:
        raise Refused(422, "candidates", "batch_no_rows")
    if len(frame) > settings.batch_max_rows:
        raise Refused(413, "candidates", "batch_too_many_rows", n=f"{len(frame):,}", limit=f"{settings.batch_max_rows:,}")
    lacking = missing_columns([str(c) for c in frame.columns], require_image=False)
    if lacking:
        raise Refused(422, "candidates", "columns_missing", columns=", ".join(lacking))
    if pictures == 0:
        raise Refused(422, "pictures", "no_pictures")
    return {"format": {"kind": fmt.kind, "encoding": fmt.encoding, "delimiter": fmt.delimiter,
                       "guessed": fmt.guessed}, "rows": len(frame), "pictures": pictures}


def _accept(folder: Path, candidates: UploadFile, pictures: UploadFile | None,
            picture_files: list[UploadFile], settings: Settings) -> dict[str, Any]:
    """Write the upload into ``folder`` within the limits; the table's summary. The table is kept
    at the top of the folder and every picture below ``pictures/``: nothing in a zip can stand in
    for the table, so the table scored is the one uploaded (and checked here)."""
    from serving.jobs import PICTURES, table_path

    suffix = Path(candidates.filename or "").suffix.lower() or ".csv"
    if suffix not in TABLE_SUFFIXES:
        raise Refused(415, "candidates", "batch_format")
    table = table_path(folder, suffix)
    if _save(candidates, table, settings.batch_max_file_bytes, "candidates") == 0:
        raise Refused(422, "candidates", "batch_empty")
    count = 0
    album = folder / PICTURES
    album.mkdir()
    files = [f for f in picture_files if f is not None and f.filename]
    if len(files) > settings.batch_max_pictures:
        raise Refused(413, "picture_files", "too_many_pictures", n=f"{len(files):,}",
                      limit=f"{settings.batch_max_pictures:,}")
    if files:
        (album / "files").mkdir()
        seen: set[str] = set()
        for f in files:
            _save(f, album / "files" / _picture_name(f.filename, seen), settings.max_image_bytes, "picture_files")
        count += len(files)
    if pictures is not None and pictures.filename:
        _save(pictures, folder / "pictures.zip", settings.batch_max_upload_bytes, "pictures")
        count += _extract(folder / "pictures.zip", album, settings, settings.batch_max_pictures - count)
    return _table_summary(table, settings, count)


@app.post("/batch", summary="Start scoring a candidates table (CSV or .xlsx) with its pictures (zip or files)",
          status_code=202, responses={202: {"description": "The job, queued", **JOB_ANSWER}})
def start_batch(request: Request,
                candidates: UploadFile = File(..., description="The candidates table: CSV (UTF-8 or GB18030; "
                                              "comma, semicolon or tab) or .xlsx; columns title, cost_price, ..."),
                pictures: UploadFile | None = File(None, description="A zip of the pictures"),
                picture_files: list[UploadFile] | None = File(None, description="Picture files")) -> JSONResponse:
    """A multipart upload: the table and its pictures (a zip and/or files; a row's picture is found
    by its path, its file name or its sku_id). Limits (settings ``batch_max_*``): the whole request,
    the table's bytes and rows, the pictures' count and unpacked bytes (413); past the queue bound,
    503 with Retry-After. The job belongs to its creator (the token, or the browser's cookie).

    A plain ``def``: FastAPI runs it on a worker thread, so saving and unzipping never block the
    event loop (``/healthz`` answers meanwhile)."""
    lang = lang_of(request)
    if state.predictor is None or state.settings is None:
        return not_ready()
    settings, jobs = state.settings, runner()
    if jobs.queued() >= settings.batch_max_queued:
        return refusal(503, "candidates", "queue_full", lang, headers={"Retry-After": "30"},
                       n=settings.batch_max_queued, seconds=30)
    job_id = secrets.token_hex(16)  # 128 bits: not guessable
    folder = settings.home / "batch_jobs" / job_id
    folder.mkdir(parents=True)
    try:
        summary = _accept(folder, candidates, pictures, picture_files or [], settings)
    except Refused as refused:
        shutil.rmtree(folder, ignore_errors=True)  # a refused upload leaves nothing behind
        return refusal(refused.status, refused.field, refused.code, lang, **refused.params)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    from features.ledger.jobs import create_job

    name = Path(str(candidates.filename or "candidates.csv").replace("\\", "/")).name[:255]
    owner = owner_of(request)
    create_job(jobs.engine, job_id, lang=lang, filename=name, total=summary["rows"], summary=summary, owner=owner)
    jobs.wake.set()
    return JSONResponse(job_view(job_id, lang, owner), status_code=202)


def job_view(job_id: str, lang: str, owner: str | None) -> dict[str, Any] | None:
    """What its creator may see of a job (no folder, no server path); None for anyone else, as
    for a job that does not exist (a job's existence is not told to others either)."""
    import hmac

    from features.ledger.jobs import get_job

    jobs = runner()
    job = get_job(jobs.engine, job_id) if jobs is not None else None
    if job is None or owner is None or not hmac.compare_digest(str(job.get("owner") or ""), owner):
        return None
    error = job.get("error")
    summary = job.get("summary") or {}
    view = {"id": job["id"], "status": job["status"], "done": job["done"], "total": job["total"],
            "filename": job["filename"], "created_at": messages.stamp(job["created_at"]),
            "updated_at": messages.stamp(job["updated_at"]), "summary": summary,
            "queue_position": jobs.position(job_id) if job["status"] == "queued" else 0,
            "status_text": messages.text(f"status.{job['status']}", lang)}
    if error:
        view["error"] = {**error, "message": messages.reason_text(error["code"], error.get("params") or {}, lang)}
    fmt = summary.get("format") or {}
    if fmt.get("kind") == "csv":
        view["read_as"] = messages.text("batch.guessed", lang, encoding=fmt.get("encoding"),
                                        delimiter=messages.text(f"delim.{fmt.get('delimiter')}", lang))
    return view


def _job_or_404(job_id: str, request: Request) -> tuple[dict[str, Any] | None, JSONResponse | None]:
    """The job's view for its creator, else a 404 (unknown, or someone else's)."""
    lang = lang_of(request)
    if not JOB_PATTERN.match(job_id) or state.settings is None:
        return None, refusal(404, "job_id", "job_not_found", lang)
    view = job_view(job_id, lang, owner_of(request))
    return (view, None) if view else (None, refusal(404, "job_id", "job_not_found", lang))


@app.get("/batch/{job_id}", summary="Progress of a batch job (counts by decision when done)",
         responses={200: JOB_ANSWER})
def batch_status(job_id: str, request: Request) -> JSONResponse:
    view, missing = _job_or_404(job_id, request)
    return missing or JSONResponse(view)


@app.post("/batch/{job_id}/cancel", summary="Cancel a queued or running batch job (between two chunks)",
          responses={200: JOB_ANSWER})
def batch_cancel(job_id: str, request: Request) -> JSONResponse:
    _view, missing = _job_or_404(job_id, request)
    if missing:
        return missing
    runner().cancel(job_id)
    return JSONResponse(job_view(job_id, lang_of(request), owner_of(request)))


def _scores(job_id: str, request: Request) -> tuple[Any, JSONResponse | None]:
    import pandas as pd

    lang = lang_of(request)
    view, missing = _job_or_404(job_id, request)
    if missing:
        return None, missing
    path = state.settings.home / "batch_jobs" / job_id / "scores.parquet"  # type: ignore[union-attr]
    if view["status"] != "done" or not path.is_file():
        return None, refusal(409, "job_id", "job_not_finished", lang)
    return pd.read_parquet(path), None


@app.get("/batch/{job_id}/rows", summary="A finished job's rows as the page shows them",
         responses={200: {"content": {"application/json": {"schema": ROWS}}}, **NOT_FINISHED})
def batch_rows(job_id: str, request: Request) -> JSONResponse:
    from serving.jobs import result_rows

    lang = lang_of(request)
    scores, problem = _scores(job_id, request)
    if problem:
        return problem
    return JSONResponse({"id": job_id, "lang": lang, "rows": result_rows(scores, lang, state.settings.currency)})


@app.get("/batch/{job_id}/scores.{kind}", summary="Download the scores (CSV with a UTF-8 BOM, or Excel)",
         responses={200: {"description": "kind csv: text/csv; kind xlsx: Excel", "content": {
             "text/csv": {"schema": {"type": "string"}}, XLSX: {"schema": {"type": "string", "format": "binary"}}}},
             **NOT_FINISHED})
def batch_result(job_id: str, kind: str, request: Request) -> Response:
    from features import spreadsheet
    from serving.jobs import export_frame

    lang = lang_of(request)
    if kind not in ("csv", "xlsx"):
        return refusal(404, "job_id", "job_not_found", lang)
    scores, problem = _scores(job_id, request)
    if problem:
        return problem
    frame = export_frame(scores, lang)
    data = spreadsheet.csv_bytes(frame) if kind == "csv" else spreadsheet.xlsx_bytes(frame)
    media = "text/csv; charset=utf-8" if kind == "csv" else XLSX
    return Response(data, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="trialcast-scores-{job_id[:8]}.{kind}"'})


@lru_cache(maxsize=8)
def _job_pictures(folder: Path) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """A job's rows and its pictures by name (the upload never changes once the job exists)."""
    from features.catalogue import read_table
    from serving.batch import picture_index
    from serving.jobs import candidates_file, pictures_folder

    table = candidates_file(folder)
    return (read_table(table).to_dict("records") if table else []), picture_index(pictures_folder(folder))


@app.get("/batch/{job_id}/pictures/{row}.jpg", summary="Thumbnail of a finished batch row's picture (row from 1)",
         responses={200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
                    **NOT_FINISHED})
def batch_picture(job_id: str, row: int, request: Request) -> Response:
    """A row's thumbnail once its job is done, as the rows themselves (409 before: the page shows
    thumbnails beside scored rows only)."""
    from serving.batch import find_picture
    from serving.jobs import job_folder, pictures_folder

    lang = lang_of(request)
    view, missing = _job_or_404(job_id, request)
    if missing:
        return missing
    if view["status"] != "done":
        return refusal(409, "job_id", "job_not_finished", lang)
    folder = job_folder(state.settings, job_id)  # type: ignore[arg-type]
    try:
        records, index = _job_pictures(folder)
        path = find_picture(pictures_folder(folder), records[row - 1], index) if 1 <= row <= len(records) else None
    except Exception:  # noqa: BLE001  a row without a usable picture has no thumbnail
        path = None
    if path is None:
        return refusal(404, "row", "no_such_file", lang, value=str(row))
    try:
        return Response(_thumbnail(path.read_bytes()), media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})
    except Exception:  # noqa: BLE001  not a picture the thumbnailer can read
        return refusal(404, "row", "no_such_file", lang, value=str(row))


def _thumbnail(data: bytes, size: int = 96) -> bytes:
    """A small JPEG of an uploaded picture, decoded by the one safe decoder (size and bomb limits)."""
    from features.images import decode_image

    settings = state.settings
    image = decode_image(data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels,  # type: ignore[union-attr]
                         max_side=settings.max_image_side, max_aspect=settings.max_image_aspect, draft=size)  # type: ignore[union-attr]
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


@app.get("/template.{kind}", summary="A candidates template (CSV or Excel) with an example row",
         responses={200: {"description": "kind csv: text/csv; kind xlsx: Excel", "content": {
             "text/csv": {"schema": {"type": "string"}}, XLSX: {"schema": {"type": "string", "format": "binary"}}}}})
def template(kind: str) -> Response:
    import pandas as pd

    from features import spreadsheet

    example = {"sku_id": "NEW-001", "launch_date": "2025-07-01", "category": "T恤",
               "title": "白色纯棉T恤 white cotton tee", "description": "夏季新款 宽松 oversize",
               "image": "NEW-001.jpg", "cost_price": 45, "list_price": 119, "channel": "app"}
    if state.predictor is not None and state.predictor.categories:
        example["category"] = state.predictor.categories[0]
    frame = pd.DataFrame([example], columns=list(TEMPLATE_COLUMNS))
    if kind == "csv":
        return Response(spreadsheet.csv_bytes(frame), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="trialcast-template.csv"'})
    if kind == "xlsx":
        return Response(spreadsheet.xlsx_bytes(frame, "candidates"), media_type=XLSX,
                        headers={"Content-Disposition": 'attachment; filename="trialcast-template.xlsx"'})
    return error(404, "kind", f"no template {kind!r}: csv or xlsx")


# ---------------------------------------------------------------- history: single forecasts and jobs
@app.get("/history", summary="Recent single forecasts and batch jobs (newest first)")
def history(request: Request, limit: int = 30) -> JSONResponse:
    from serving.forecast_log import recent

    lang = lang_of(request)
    if state.settings is None:
        return not_ready()
    limit = max(1, min(int(limit), 200))
    jobs = runner()
    from features.ledger.jobs import recent_jobs

    owner = owner_of(request)
    listed = [job_view(j["id"], lang, owner) for j in recent_jobs(jobs.engine, limit, owner)] if jobs else []
    return JSONResponse({"forecasts": recent(state.settings, limit, lang, owner), "jobs": [j for j in listed if j]})


@app.get("/forecasts/{forecast_id}", summary="A single forecast on record, as it was answered")
def forecast(forecast_id: str, request: Request) -> JSONResponse:
    from serving.forecast_log import reopen

    lang = lang_of(request)
    if state.settings is None or not JOB_PATTERN.match(forecast_id):
        return refusal(404, "forecast_id", "forecast_not_found", lang)
    answer = reopen(state.settings, forecast_id)
    return JSONResponse(answer) if answer else refusal(404, "forecast_id", "forecast_not_found", lang)
