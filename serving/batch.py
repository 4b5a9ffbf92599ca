"""Batch scoring of a candidates file: every input row comes out once, scored or with its error.

Work is done in chunks; each finished chunk is written atomically into ``OUT.parts/``, so a killed
run resumes where it stopped without losing or duplicating rows. The final file is written to a
temporary name and renamed into place (readers never see half a file).

The forecast log gets each row once too. A chunk's forecasts are logged before its part file is
renamed into place, so a kill between the two scores that chunk again on resume. Each row's
``forecast_id`` is therefore derived from the run's key (128 random bits kept in the parts'
manifest) and the row's position: the replayed chunk writes the same ids, which replace the rows
already logged (``features.ledger.store.write_forecasts``) instead of adding to them. Without the
key the ids cannot be guessed, as the random ids of single forecasts cannot.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from features import spreadsheet
from features.catalogue import FieldError, read_table, resolve_image
from serving.predictor import Predictor
from serving.scale import use_ray

CHUNK = 64
MANIFEST = "manifest.json"  # in OUT.parts/: the run's input, model, chunking and forecast-id key
# Every output has these columns after the input's, whatever failed, in this order.
NUMBERS = ("p10", "p50", "p90", "break_even_units", "top_similarity", "quantity")
OUTPUT_COLUMNS = ("p10", "p50", "p90", "curve", "decision", "reasons", "message", "break_even_units",
                  "top_similarity", "similar_skus", "similar_sales", "similar_similarity", "model_version",
                  "quantity", "forecast_id", "error")
PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")


def _input_columns(raw: pd.DataFrame) -> pd.DataFrame:
    """The input with columns named like our outputs (a scores file scored again) kept as ``<name>_input``."""
    clash = {c: f"{c}_input" for c in raw.columns if c in OUTPUT_COLUMNS}
    return raw.rename(columns=clash) if clash else raw


def _flatten(answer: dict[str, Any]) -> dict[str, Any]:
    if not answer["ok"]:
        return {"error": "; ".join(f"{e['field']}: {e['reason']}" for e in answer["errors"])}
    f, d = answer["forecast"], answer["decision"]
    analogs = answer["analogs"]
    return {
        "p10": f["p10"], "p50": f["p50"], "p90": f["p90"],
        "curve": json.dumps(f["curve"]),
        "decision": d["label"], "reasons": ",".join(d["reasons"]), "message": d["message"],
        "break_even_units": d["break_even_units"],
        "top_similarity": analogs[0]["similarity"] if analogs else None,
        "similar_skus": ",".join(a["sku_id"] for a in analogs),
        "similar_sales": ",".join(f"{a['sales']:g}" for a in analogs),  # their 7-day units, in the same order
        "similar_similarity": ",".join(f"{a['similarity']:.4f}" for a in analogs),
        "model_version": answer["model"]["version"],
        "quantity": answer["quantity"]["units"],  # newsvendor units to make (features.quantity)
        "forecast_id": answer.get("forecast_id"),  # its row in the forecast log
        "error": None,
    }


def picture_index(root: Path) -> dict[str, Path]:
    """Pictures under ``root`` by lower-case file name and by stem, for rows that name a picture by
    its file name only, or by a path that is not the one it has in the upload."""
    index: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in PICTURE_SUFFIXES and not path.name.startswith("."):
            index.setdefault(path.name.lower(), path)
            index.setdefault(path.stem.lower(), path)
    return index


def find_picture(root: Path, record: dict[str, Any], index: dict[str, Path] | None,
                 required: bool = True) -> Path | None:
    """The row's picture: its path under ``root``; else (``index`` given) a picture of the same file
    name anywhere in the upload, or named after the row's sku_id. ``required``: a row without one is
    an error (not for a model that learnt what a missing picture means)."""
    try:
        path = resolve_image(root, record.get("image"), required=required and index is None)
    except FieldError as error:
        if index is None or "escapes" in error.reason or "relative" in error.reason:
            raise
        path = None
    if path is not None or index is None:
        return path
    value = str(record.get("image") or "").strip()
    keys = [Path(value.replace("\\", "/")).name.lower()] if value else []
    for key in [*keys, str(record.get("sku_id") or "").strip().lower()]:
        if key and key in index:
            return index[key]
    if not value:
        if not required:
            return None
        raise FieldError("image", "is missing")
    raise FieldError("image", f"no picture {value!r} for this row in the upload: add it to the zip or upload it")


def answer_rows(raw: pd.DataFrame, root: Path, predictor: Predictor, index: dict[str, Path] | None = None,
                ids: list[str] | None = None) -> list[dict[str, Any]]:
    """The service's answer to each row of a candidates table (pictures by path under ``root``, or
    found by name in ``index``), in order: ok, or the row's field errors. ``ids``: each row's forecast
    id (random when None)."""
    records = raw.to_dict("records")
    images: list[bytes | None] = []
    path_errors: dict[int, tuple[str, str]] = {}
    for i, record in enumerate(records):
        try:
            path = find_picture(root, record, index, predictor.image_required)
            size = path.stat().st_size if path else 0
            if size > predictor.settings.max_image_bytes:  # do not read a huge file only to refuse it
                raise FieldError("image", f"the file is {size:,} bytes, over the limit of "
                                          f"{predictor.settings.max_image_bytes:,}")
            images.append(path.read_bytes() if path else None)
        except FieldError as error:
            path_errors[i] = ("image", error.reason)
            images.append(None)
        except OSError as error:
            path_errors[i] = ("image", f"cannot be read ({error.strerror})")
            images.append(None)
    todo = [i for i in range(len(records)) if i not in path_errors]
    given = None if ids is None else [ids[i] for i in todo]
    answers = predictor.predict([records[i] for i in todo], [images[i] for i in todo], ids=given) if todo else []
    out: list[dict[str, Any]] = [{} for _ in records]
    for i, answer in zip(todo, answers):
        out[i] = answer
    for i, (field, reason) in path_errors.items():
        out[i] = {"sku_id": records[i].get("sku_id"), "ok": False, "errors": [{"field": field, "reason": reason}]}
    return out


def score_rows(raw: pd.DataFrame, root: Path, predictor: Predictor, index: dict[str, Path] | None = None,
               ids: list[str] | None = None) -> pd.DataFrame:
    """Score rows of a candidates table (``answer_rows``); one output row per input row."""
    flat = [_flatten(answer) for answer in answer_rows(raw, root, predictor, index, ids)]
    out = pd.DataFrame(flat).reindex(columns=list(OUTPUT_COLUMNS))
    out = out.astype({c: "float64" if c in NUMBERS else "string" for c in OUTPUT_COLUMNS})
    return pd.concat([_input_columns(raw).reset_index(drop=True), out], axis=1)


def _fingerprint(path: Path, model_version: str | None) -> str:
    digest = hashlib.sha256(path.read_bytes())
    digest.update(str(model_version).encode())
    return digest.hexdigest()[:16]


def _atomic_write(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix.lower() in (".csv", ".xlsx"):  # a file people open in a spreadsheet
        spreadsheet.write(frame, path)
        return
    # pid + random: two Ray workers of one machine never share a temporary name
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def _part(parts: Path, start: int) -> Path:
    return parts / f"{start:09d}.parquet"


def forecast_ids(key: str, start: int, rows: int) -> list[str]:
    """The forecast ids of rows ``start`` .. ``start + rows - 1`` of the run keyed ``key``: 128 bits
    of HMAC-SHA256 each, the same every time the chunk is scored."""
    return [hmac.new(bytes.fromhex(key), str(n).encode(), hashlib.sha256).hexdigest()[:32]
            for n in range(start, start + rows)]


def run_key(parts: Path) -> str:
    """The key of the run whose chunks are in ``parts`` (written by ``score_file`` before any chunk)."""
    return str(json.loads((parts / MANIFEST).read_text())["key"])


def write_chunk(raw: pd.DataFrame, start: int, rows: int, root: Path, predictor: Predictor, parts: Path,
                index: dict[str, Path] | None = None) -> None:
    """Score one chunk of the candidates and write it whole into ``parts`` (a rename: a killed
    writer leaves no half chunk), its rows logged under the run's ids for them, so a chunk scored
    again never adds to the log. What both the single-process and the Ray path run."""
    ids = forecast_ids(run_key(parts), start, rows)
    scored = score_rows(raw.iloc[start : start + rows], root, predictor, index, ids)
    _atomic_write(scored.astype({c: "string" for c in _input_columns(raw).columns}), _part(parts, start))


def _open_parts(parts: Path, manifest: dict[str, Any]) -> None:
    """Keep ``parts`` when its manifest is this run's (same input, model and chunking), with the
    key its logged rows were written under; else start afresh with a new key. The manifest is
    renamed into place, so a kill never leaves one without its key."""
    try:
        kept = json.loads((parts / MANIFEST).read_text())
    except (OSError, ValueError):
        kept = {}
    if isinstance(kept, dict) and kept.get("key") and {k: v for k, v in kept.items() if k != "key"} == manifest:
        return
    shutil.rmtree(parts, ignore_errors=True)
    parts.mkdir(parents=True, exist_ok=True)
    tmp = parts / f".{MANIFEST}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps({**manifest, "key": secrets.token_hex(16)}))
    os.replace(tmp, parts / MANIFEST)


def _close_parts(parts: Path) -> None:
    """Remove the finished run's chunks, the manifest last: a kill midway leaves the key beside the
    chunks still there, so a rerun scores the removed ones again under their old ids."""
    for path in parts.iterdir():
        if path.name != MANIFEST:
            path.unlink(missing_ok=True)
    (parts / MANIFEST).unlink(missing_ok=True)
    shutil.rmtree(parts, ignore_errors=True)


def _check_table_limits(table: Path, *, max_rows: int | None, max_bytes: int | None, rows: int = 0) -> None:
    """Refuse a table over its byte or row limit (the same words as the upload's refusal)."""
    size = table.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise ValueError(f"the file is {size:,} bytes, over the limit of {max_bytes:,}")
    if max_rows is not None and rows > max_rows:
        raise ValueError(f"the file has {rows:,} rows, over the limit of {max_rows:,} per job: split it")


def score_file(
    candidates: Path,
    out: Path,
    predictor: Predictor,
    *,
    chunk: int = CHUNK,
    progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
    by_name: bool = False,
    engine: str | None = None,
    pictures: Path | None = None,
    max_rows: int | None = None,
    max_bytes: int | None = None,
) -> dict[str, Any]:
    """Score ``candidates`` into ``out`` (.parquet, .csv or .xlsx), resuming a killed run.
    ``by_name``: a row's picture may also be found by its file name anywhere under the picture folder.
    ``engine``: ``local`` / ``ray`` / ``auto`` instead of the settings' ``score_engine``.
    ``pictures``: the folder rows' pictures are in (default: the table's own; Ray workers read them
    from the table's folder, so another folder is scored in this process).
    ``max_rows`` / ``max_bytes``: a table over either limit is refused (``ValueError``) before any
    row is scored: the limits hold for the very table that is read."""
    candidates, out = Path(candidates), Path(out)
    _check_table_limits(candidates, max_rows=None, max_bytes=max_bytes)
    raw = read_table(candidates)
    _check_table_limits(candidates, max_rows=max_rows, max_bytes=None, rows=len(raw))
    root = candidates.parent if pictures is None else Path(pictures)
    raw = raw.astype(object).where(raw.notna(), None)
    parts = out.with_name(out.name + ".parts")
    _open_parts(parts, {"input": _fingerprint(candidates, predictor.version), "chunk": chunk, "rows": len(raw)})

    index = picture_index(root) if by_name else None
    starts = list(range(0, len(raw), chunk))
    done_before = sum(1 for s in starts if _part(parts, s).exists())
    missing = [(s, min(chunk, len(raw) - s)) for s in starts if not _part(parts, s).exists()]
    used = {"engine": "local"}
    choice = predictor.settings if engine is None else predictor.settings.model_copy(update={"score_engine": engine})
    if missing and root == candidates.parent and use_ray(choice, sum(n for _, n in missing)):
        from serving.scale import score_chunks  # Ray only when asked for or worth it

        done = score_chunks(candidates, parts, missing, predictor.settings, str(predictor.version), by_name)
        used = {"engine": "ray", "ray_chunks": len(done), "ray_workers_used": int(done["pid"].nunique())}
    bar = tqdm(total=len(raw), desc="scoring", unit="SKU", disable=not progress)
    for start in starts:
        rows = min(chunk, len(raw) - start)
        if not _part(parts, start).exists():
            write_chunk(raw, start, rows, root, predictor, parts, index)
        bar.update(rows)
        if on_progress:
            on_progress(min(start + rows, len(raw)), len(raw))
    bar.close()
    frames = [pd.read_parquet(parts / f"{s:09d}.parquet") for s in starts]
    result = (pd.concat(frames, ignore_index=True) if frames
              else _input_columns(raw).reindex(columns=[*_input_columns(raw).columns, *OUTPUT_COLUMNS]))
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(result, out)
    _close_parts(parts)
    failed = int(result["error"].notna().sum()) if "error" in result else 0
    return {"rows": len(result), "scored": len(result) - failed, "failed": failed,
            "resumed_chunks": done_before, "out": str(out), **used}
