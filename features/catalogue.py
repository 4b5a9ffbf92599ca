"""The catalogue contract: what a table of launched (or candidate) SKUs must hold, checked on load.

Every problem is reported at once with its row (1-based, data rows only), column and reason; a bad
row never silently disappears. The same field checks serve single uploads in ``serving``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from features.images import ImageError, decode_image

REQUIRED = ("sku_id", "launch_date", "category", "title", "description", "image", "cost_price")
OPTIONAL = ("list_price", "channel")


@dataclass(frozen=True)
class CatalogueSpec:
    """Which columns hold the target and the sales curve, and which inputs may be absent.

    The default is the product's contract (7-day units, daily curve ``sales_d1..sales_d7``).
    Real data sets with other horizons (VISUELLE: weeks) set their own target and curve prefix.
    """

    target: str = "sales_7d"
    curve_prefix: str = "sales_d"
    require_cost_price: bool = True
    require_image: bool = True

    def curve_columns(self, columns: list[str] | pd.Index) -> list[str]:
        pattern = re.compile(rf"^{re.escape(self.curve_prefix)}(\d+)$")
        found = [(int(m.group(1)), c) for c in columns if (m := pattern.match(str(c)))]
        return [c for _, c in sorted(found)]


DEFAULT_SPEC = CatalogueSpec()


@dataclass(frozen=True)
class Problem:
    row: int | None  # 1-based data row; None for table-level problems
    column: str
    reason: str

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row is not None else "table"
        return f"{where}, column '{self.column}': {self.reason}"


class FieldError(ValueError):
    """One field of one SKU is unusable."""

    def __init__(self, column: str, reason: str):
        super().__init__(f"{column}: {reason}")
        self.column = column
        self.reason = reason


class CatalogueError(ValueError):
    """A catalogue that breaks the contract; ``problems`` lists every violation."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} problem(s) in the catalogue:\n{shown}{more}")


@dataclass
class Catalogue:
    """A validated table; ``frame`` has typed columns and ``image_path`` resolved to absolute paths."""

    frame: pd.DataFrame
    root: Path
    spec: CatalogueSpec = field(default_factory=CatalogueSpec)

    @property
    def curve_columns(self) -> list[str]:
        return self.spec.curve_columns(self.frame.columns)

    def __len__(self) -> int:
        return len(self.frame)


# ---------------------------------------------------------------- field checks (shared with serving)
def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and not value.strip()
    )


def check_price(column: str, value: Any, *, required: bool) -> float:
    """A price must be a finite positive number; absent only where the spec allows it."""
    if _is_blank(value):
        if required:
            raise FieldError(column, "is missing")
        return float("nan")
    if isinstance(value, bool):
        raise FieldError(column, f"must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FieldError(column, f"must be a number, got {str(value)[:40]!r}") from None
    if not math.isfinite(number):
        raise FieldError(column, f"must be a finite number, got {value!r}")
    if number <= 0:
        raise FieldError(column, f"must be positive, got {number:g}")
    return number


def check_text(column: str, value: Any, *, max_chars: int, required: bool) -> str:
    if _is_blank(value):
        if required:
            raise FieldError(column, "is empty")
        return ""
    text = str(value).strip()
    if len(text) > max_chars:
        raise FieldError(column, f"is {len(text):,} characters, over the limit of {max_chars:,}")
    return text


def check_date(column: str, value: Any) -> pd.Timestamp:
    if _is_blank(value):
        raise FieldError(column, "is missing")
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise FieldError(column, f"is not a date (YYYY-MM-DD), got {str(value)[:40]!r}") from None
    if pd.isna(stamp):
        raise FieldError(column, "is missing")
    return stamp.tz_localize(None).normalize() if stamp.tzinfo else stamp.normalize()


def check_sales(column: str, value: Any) -> float:
    if _is_blank(value):
        raise FieldError(column, "is missing")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FieldError(column, f"must be a number, got {str(value)[:40]!r}") from None
    if not math.isfinite(number):
        raise FieldError(column, f"must be a finite number, got {value!r}")
    if number < 0:
        raise FieldError(column, f"must not be negative, got {number:g}")
    return number


def resolve_image(root: Path, value: Any, *, required: bool) -> Path | None:
    """The picture's absolute path, refusing paths that leave the catalogue folder."""
    if _is_blank(value):
        if required:
            raise FieldError("image", "is missing")
        return None
    relative = Path(str(value).strip())
    if relative.is_absolute():
        raise FieldError("image", "must be a path relative to the catalogue folder")
    base = root.resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise FieldError("image", f"path {str(value)!r} escapes the catalogue folder")
    if not path.is_file():
        raise FieldError("image", f"file {str(value)!r} does not exist")
    return path


def check_image_file(path: Path, *, max_bytes: int, max_pixels: int) -> None:
    try:
        decode_image(path.read_bytes(), max_bytes=max_bytes, max_pixels=max_pixels)
    except ImageError as error:
        raise FieldError("image", str(error)) from None
    except OSError as error:
        raise FieldError("image", f"cannot be read ({error.strerror})") from None


# ---------------------------------------------------------------- tables
def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet table with every column as text where the format allows."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix in (".csv", ".txt"):
        # Read as strings: the contract, not pandas' guesses, decides what is a number.
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    raise CatalogueError([Problem(None, "file", f"{path.name}: expected a .csv or .parquet file")])


def validate_frame(
    raw: pd.DataFrame,
    root: Path,
    *,
    require_target: bool = True,
    spec: CatalogueSpec = DEFAULT_SPEC,
    max_text_chars: int = 5_000,
    max_image_bytes: int = 10 * 1024 * 1024,
    max_image_pixels: int = 40_000_000,
    check_images: bool = True,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Check every row; return the typed frame (bad cells left as NaN) and the list of problems.

    The frame keeps every input row in its order, so callers that tolerate bad rows (batch
    scoring) can report them beside the good ones.
    """
    problems: list[Problem] = []
    columns = [str(c) for c in raw.columns]
    needed = list(REQUIRED) + ([spec.target] if require_target else [])
    missing = [c for c in needed if c not in columns]
    for column in missing:
        problems.append(Problem(None, column, "required column is missing"))
    if missing:
        return pd.DataFrame(), problems

    curve = spec.curve_columns(columns) if require_target else []
    records = raw.to_dict("records")
    out: dict[str, list[Any]] = {c: [] for c in [*REQUIRED, *OPTIONAL, "image_path"]}
    if require_target:
        out[spec.target] = []
        for c in curve:
            out[c] = []
    row_problems: list[list[Problem]] = []

    seen: dict[str, int] = {}
    for number, record in enumerate(records, start=1):
        mine: list[Problem] = []

        def attempt(column: str, check, default=None):  # noqa: ANN001 - local helper
            try:
                return check()
            except FieldError as error:
                mine.append(Problem(number, error.column or column, error.reason))
                return default

        sku = attempt("sku_id", lambda: check_text("sku_id", record.get("sku_id"), max_chars=200, required=True))
        if sku:
            if sku in seen:
                mine.append(Problem(number, "sku_id", f"duplicate id {sku!r} (first seen in row {seen[sku]})"))
            else:
                seen[sku] = number
        out["sku_id"].append(sku)
        out["launch_date"].append(attempt("launch_date", lambda: check_date("launch_date", record.get("launch_date")), pd.NaT))
        out["category"].append(attempt("category", lambda: check_text("category", record.get("category"), max_chars=200, required=True)))
        out["title"].append(attempt("title", lambda: check_text("title", record.get("title"), max_chars=max_text_chars, required=True)))
        out["description"].append(attempt("description", lambda: check_text("description", record.get("description"), max_chars=max_text_chars, required=False), ""))
        out["cost_price"].append(attempt("cost_price", lambda: check_price("cost_price", record.get("cost_price"), required=spec.require_cost_price), float("nan")))
        out["list_price"].append(attempt("list_price", lambda: check_price("list_price", record.get("list_price"), required=False), float("nan")))
        out["channel"].append(attempt("channel", lambda: check_text("channel", record.get("channel"), max_chars=200, required=False), ""))
        out["image"].append(record.get("image"))
        path = attempt("image", lambda: resolve_image(root, record.get("image"), required=spec.require_image))
        if path is not None and check_images:
            attempt("image", lambda: check_image_file(path, max_bytes=max_image_bytes, max_pixels=max_image_pixels))
        out["image_path"].append(str(path) if path is not None else None)
        if require_target:
            out[spec.target].append(attempt(spec.target, lambda: check_sales(spec.target, record.get(spec.target)), float("nan")))
            for c in curve:
                out[c].append(attempt(c, lambda c=c: check_sales(c, record.get(c)), float("nan")))
        row_problems.append(mine)
        problems.extend(mine)

    frame = pd.DataFrame(out)
    frame["launch_date"] = pd.to_datetime(frame["launch_date"])
    for c in ("cost_price", "list_price", *( [spec.target, *curve] if require_target else [])):
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
    frame["row_error"] = ["; ".join(f"{p.column}: {p.reason}" for p in mine) or None for mine in row_problems]
    return frame, problems


def load_catalogue(
    path: str | Path,
    *,
    require_target: bool = True,
    spec: CatalogueSpec = DEFAULT_SPEC,
    **limits: Any,
) -> Catalogue:
    """Load and validate a catalogue file; raise ``CatalogueError`` listing every problem."""
    path = Path(path)
    if not path.is_file():
        raise CatalogueError([Problem(None, "file", f"{path} does not exist")])
    raw = read_table(path)
    frame, problems = validate_frame(raw, path.parent, require_target=require_target, spec=spec, **limits)
    if problems:
        raise CatalogueError(problems)
    if frame.empty:
        raise CatalogueError([Problem(None, "file", "the catalogue has no rows")])
    return Catalogue(frame=frame.drop(columns="row_error"), root=path.parent.resolve(), spec=spec)

