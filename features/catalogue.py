"""The catalogue contract: what a table of launched (or candidate) SKUs must hold, checked on load.

Every problem is reported at once with its row (1-based, data rows only), column and reason; a bad
row never silently disappears. Each row is checked by the one SKU schema (``features.schema``),
the same that checks single uploads and batch items in ``serving``.

A history is a retailer's catalogue as it is: a picture, a cost price, a list price, a description
or a channel may be absent (a blank cell, or no such column at all), and each absence has the one
meaning of ``features.schema.ABSENT``. Any other text column (colour, fabric, season...) is an
attribute: a feature and an analog key of the model (``features.assemble``), unless the settings
name the attribute columns (``attribute_columns``). The sales may also come as daily rows
(``features.daily``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from features.images import ImageError, decode_image
from features.schema import (
    MAX_NAME,
    FieldError,
    LaunchedSku,
    Sku,
    check_date,
    check_price,
    check_sales,
    check_text,
    is_blank,
    validate,
)

# Columns a history table must have (the other fields may be left out, as columns or cells), and
# the columns of a candidates table. Field rules live in features.schema, not here.
REQUIRED = ("sku_id", "launch_date", "category", "title")
CANDIDATE_REQUIRED = ("title", "cost_price", "image")
FIELDS = ("sku_id", "launch_date", "category", "title", "description", "image", "cost_price", "list_price", "channel")
# Columns that are never attributes: what the product itself reads or writes beside the fields.
NOT_ATTRIBUTES = frozenset({*FIELDS, "image_path", "row_error", "forecast_id", "exclude_analogs", "pin_analogs",
                            "image_base64", "date", "units"})
CHECK_DRAFT = 64  # a JPEG checked on load is decoded down to sides of at least this many pixels
__all__ = ["FieldError", "check_date", "check_price", "check_sales", "check_text"]


@dataclass(frozen=True)
class CatalogueSpec:
    """Which columns hold the target and the sales curve, and which inputs may be absent.

    The default is the product's contract (7-day units, daily curve ``sales_d1..sales_d7``).
    Real data sets with other horizons (VISUELLE: weeks) set their own target and curve prefix.
    """

    target: str = "sales_7d"
    curve_prefix: str = "sales_d"
    # What a candidate (a SKU to forecast) must carry; history rows may always lack both.
    require_cost_price: bool = True
    require_image: bool = True
    # The attribute columns: None finds them (every extra text column), a tuple names them.
    attributes: tuple[str, ...] | None = None

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
    notes: list[str] = field(default_factory=list)  # what loading left out, and why (daily sales)

    @property
    def curve_columns(self) -> list[str]:
        return self.spec.curve_columns(self.frame.columns)

    def __len__(self) -> int:
        return len(self.frame)


# ---------------------------------------------------------------- pictures by path
def resolve_image(root: Path, value: Any, *, required: bool) -> Path | None:
    """The picture's absolute path, refusing paths that leave the catalogue folder."""
    if is_blank(value):
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
    """Refuse a picture file that would not decode (a JPEG is checked at a reduced scale: cheaper,
    and a damaged stream fails all the same)."""
    try:
        decode_image(path.read_bytes(), max_bytes=max_bytes, max_pixels=max_pixels, draft=CHECK_DRAFT)
    except ImageError as error:
        raise FieldError("image", str(error)) from None
    except OSError as error:
        raise FieldError("image", f"cannot be read ({error.strerror})") from None


# ---------------------------------------------------------------- tables
TEXT_ENCODINGS = ("utf-8-sig", "gb18030")  # what Excel writes here: UTF-8 (with or without BOM), or GBK/GB18030
DELIMITERS = (",", ";", "\t")


@dataclass(frozen=True)
class TableFormat:
    """How a table file was read: ``encoding`` and ``delimiter`` (``xlsx`` / ``parquet`` for those),
    and whether either was a guess (the page says so)."""

    kind: str
    encoding: str | None = None
    delimiter: str | None = None
    guessed: bool = False


def _decode(data: bytes) -> tuple[str, str]:
    """The text and its encoding: strict UTF-8 first (a BOM is dropped), else GB18030, the superset
    of GBK that Chinese Excel writes. Two candidates, tried in order, need no detector library:
    GB18030 decodes almost any bytes, so it comes last."""
    for encoding in TEXT_ENCODINGS:
        try:
            return data.decode(encoding), ("utf-8" if encoding == "utf-8-sig" else encoding)
        except UnicodeDecodeError:
            continue
    raise CatalogueError([Problem(None, "file", "the file is neither UTF-8 nor GBK text")])


def _delimiter(text: str) -> tuple[str, bool]:
    """The separator of the header line: the candidate that splits it into most columns (guessed
    when the header holds none of them and the sniffer has to look further)."""
    import csv

    header = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    if counts[best] > 0:
        return best, False
    try:
        return csv.Sniffer().sniff(text[:10_000], delimiters="".join(DELIMITERS)).delimiter, True
    except csv.Error:
        return ",", True


def read_table_format(path: Path) -> tuple[pd.DataFrame, TableFormat]:
    """Read a CSV (any of ``TEXT_ENCODINGS``, comma / semicolon / tab), an Excel ``.xlsx`` or a
    Parquet table, every column as text where the format allows, and say how it was read."""
    import io

    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path), TableFormat("parquet")
    if suffix in (".xlsx", ".xlsm"):
        try:
            frame = pd.read_excel(path, dtype=str, keep_default_na=False, engine="openpyxl")
        except Exception as error:  # noqa: BLE001  openpyxl raises zip, XML and value errors alike
            raise CatalogueError([Problem(None, "file", f"{path.name}: not a readable Excel file "
                                                        f"({type(error).__name__})")]) from None
        frame.columns = [str(c).strip() for c in frame.columns]
        return frame, TableFormat("xlsx")
    if suffix in (".csv", ".txt", ".tsv"):
        text, encoding = _decode(path.read_bytes())
        delimiter, guessed = _delimiter(text)
        # Read as strings: the contract, not pandas' guesses, decides what is a number.
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, sep=delimiter)
        frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
        return frame, TableFormat("csv", encoding, delimiter, guessed or encoding != "utf-8")
    raise CatalogueError([Problem(None, "file", f"{path.name}: expected a .csv, .xlsx or .parquet file")])


def read_table(path: Path) -> pd.DataFrame:
    """``read_table_format`` without the format."""
    return read_table_format(Path(path))[0]


def attribute_columns(raw: pd.DataFrame, spec: CatalogueSpec) -> list[str]:
    """The table's attribute columns: those the spec names, else every column that is neither a
    field nor the sales and holds text (a column of numbers only is not an attribute)."""
    if spec.attributes is not None:
        return list(spec.attributes)
    reserved = {*NOT_ATTRIBUTES, spec.target, *spec.curve_columns(raw.columns)}
    return [str(c) for c in raw.columns if str(c) not in reserved and not str(c).startswith("Unnamed:")
            and _holds_text(raw[c])]


def _holds_text(column: pd.Series) -> bool:
    values = [v for v in column.tolist() if not is_blank(v)]
    if not values:
        return False
    numbers = pd.to_numeric(pd.Series(values, dtype=object).astype(str).str.strip(), errors="coerce")
    return bool(numbers.isna().any())


def attribute_value(column: str, value: Any) -> str | None:
    """An attribute cell as text (None when blank): a short name, like a category."""
    return check_text(column, value, max_chars=MAX_NAME, required=False) or None


def missing_columns(columns: list[str], *, require_image: bool = True) -> list[str]:
    """The candidate columns a table lacks: named once for the whole table, never once per row."""
    return [c for c in CANDIDATE_REQUIRED if c not in columns and (c != "image" or require_image)]


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

    History rows (``require_target``) are ``LaunchedSku``s whose picture and cost price may be
    absent; candidate rows are ``Sku``s held to ``spec``'s requirements. Attribute columns
    (``attribute_columns``) are kept as text. The frame keeps every input row in its order, so
    callers that tolerate bad rows (batch scoring) can report them beside the good ones.
    """
    columns = [str(c) for c in raw.columns]
    attributes = attribute_columns(raw, spec)
    needed = [*REQUIRED, spec.target] if require_target else [
        c for c in CANDIDATE_REQUIRED if (c != "image" or spec.require_image)
        and (c != "cost_price" or spec.require_cost_price)]
    if require_target and spec.attributes is not None:
        needed += list(spec.attributes)  # named by the settings: a history without one is a mistake
    missing = [c for c in needed if c not in columns]
    if missing:
        return pd.DataFrame(), [Problem(None, column, "required column is missing") for column in missing]
    if require_target:
        spec = replace(spec, require_cost_price=False, require_image=False)

    model = LaunchedSku if require_target else Sku
    context = {"max_text_chars": max_text_chars, "require_cost_price": spec.require_cost_price, "table": True}
    curve = spec.curve_columns(columns) if require_target else []
    targets = [spec.target, *curve] if require_target else []
    rows, problems, row_errors = [], [], []
    seen: dict[str, int] = {}
    for number, record in enumerate(raw.to_dict("records"), start=1):
        typed, found = validate(model, record, context)
        mine = [Problem(number, column, reason) for column, reason in found]
        row = typed.model_dump() if typed is not None else {c: None for c in FIELDS}
        if typed is None:  # keep the good cells of a bad row: batch scoring reports beside them
            row.update({k: v for k, v in record.items() if k in FIELDS and k not in dict(found)})
        sku = row.get("sku_id")
        if sku and typed is not None:
            if sku in seen:
                mine.append(Problem(number, "sku_id", f"duplicate id {sku!r} (first seen in row {seen[sku]})"))
            else:
                seen[sku] = number
        row["image"] = record.get("image")
        row["image_path"] = _image_path(root, record.get("image"), spec, check_images,
                                        (max_image_bytes, max_image_pixels), number, mine)
        for column in attributes:
            try:
                row[column] = attribute_value(column, record.get(column))
            except FieldError as error:
                row[column] = None
                if require_target or spec.attributes is not None:  # a candidate's other columns are not read
                    mine.append(Problem(number, column, error.reason))
        for column in targets:
            try:
                row[column] = check_sales(column, record.get(column))
            except FieldError as error:
                mine.append(Problem(number, column, error.reason))
                row[column] = float("nan")
        rows.append(row)
        problems.extend(mine)
        row_errors.append("; ".join(f"{p.column}: {p.reason}" for p in mine) or None)
    return _typed_frame(rows, [*targets, *attributes], row_errors, attributes), problems


def _image_path(root: Path, value: object, spec: CatalogueSpec, check: bool, limits: tuple[int, int],
                number: int, problems: list[Problem]) -> str | None:
    """The picture's absolute path (checked to decode when ``check``), or None with a problem noted."""
    try:
        path = resolve_image(root, value, required=spec.require_image)
        if path is not None and check:
            check_image_file(path, max_bytes=limits[0], max_pixels=limits[1])
        return str(path) if path is not None else None
    except FieldError as error:
        problems.append(Problem(number, error.column, error.reason))
        return None


def _typed_frame(rows: list[dict], extra: list[str], row_errors: list[str | None],
                 attributes: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(dict.fromkeys([*FIELDS, "image_path", *extra])))
    frame["launch_date"] = pd.to_datetime(frame["launch_date"], errors="coerce")
    for c in ("cost_price", "list_price", *(c for c in extra if c not in attributes)):
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
    for c in ("description", "channel"):
        frame[c] = frame[c].fillna("")
    frame["row_error"] = row_errors
    return frame


def load_catalogue(
    path: str | Path,
    *,
    require_target: bool = True,
    spec: CatalogueSpec = DEFAULT_SPEC,
    sales: str | Path | None = None,
    **limits: Any,
) -> Catalogue:
    """Load and validate a catalogue file; raise ``CatalogueError`` listing every problem.

    ``sales``: a file of daily sales (one row per SKU and day) that gives the history its target
    and curve (``features.daily``); a catalogue that holds such rows itself is read the same way.
    The returned catalogue's spec names the attribute columns found."""
    from features.daily import is_daily, with_daily_sales

    path = Path(path)
    if not path.is_file():
        raise CatalogueError([Problem(None, "file", f"{path} does not exist")])
    raw = read_table(path)
    notes: list[str] = []
    if require_target and (sales is not None or is_daily(raw, spec)):
        raw, notes = with_daily_sales(raw, None if sales is None else read_table(Path(sales)), spec)
    frame, problems = validate_frame(raw, path.parent, require_target=require_target, spec=spec, **limits)
    if problems:
        raise CatalogueError(problems)
    if frame.empty:
        raise CatalogueError([Problem(None, "file", "the catalogue has no rows")])
    found = replace(spec, attributes=tuple(attribute_columns(raw, spec)))
    return Catalogue(frame=frame.drop(columns="row_error"), root=path.parent.resolve(), spec=found, notes=notes)

