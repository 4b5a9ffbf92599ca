"""Read VISUELLE (v1) into the catalogue contract of ``features.catalogue``.

One row per product, in the contract's columns:

- ``sku_id``       ``str(external_code)``
- ``launch_date``  ``release_date`` (a normalised ``Timestamp``)
- ``category``     ``category``
- ``title``        ``"{color} {fabric} {category}"``, e.g. ``"red bengaline culottes"``
- ``description``  every attribute word and the season, e.g. ``"season SS19, category
                   culottes, colour red, fabric bengaline, detail strapless"``
- ``image``        the relative path given as ``local_image`` in ``image_index.csv``
                   (``images/<code>.jpg``); empty where no picture is here (about 90% of products)
- ``cost_price``, ``list_price``  NaN: VISUELLE has no price at all, and none is made up
- ``channel``      empty
- ``sales_w0`` .. ``sales_w11``  weekly UNITS (value x 1065, rounded to a whole number)
- ``sales_6w``     the target: units of weeks 0..5 (after clipping, see below)

plus the extra attribute columns ``season``, ``color``, ``fabric``, ``extra``.

Negative returns: 14 weekly values of train.csv are negative (net returns of -1 or -2 units). The
contract forbids negative sales, so they are **clipped to 0**. ``load_visuelle`` logs how many it
clipped and records it in ``frame.attrs["clipped_negative_values"]`` (and the units removed in
``frame.attrs["clipped_negative_units"]``). On train.csv that is 14 values, 16 units out of
2.82 million; none of the reference metrics changes at two decimals.

Week 0 is only the remainder of the calendar week of the release day; weeks 1..11 are full weeks.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from features.catalogue import CatalogueError, CatalogueSpec, validate_frame

log = logging.getLogger(__name__)

SCALE = 1065  # the published CSVs hold units / 1065
N_WEEKS = 12
CURVE_PREFIX = "sales_w"
TARGET = "sales_6w"
TARGET_WEEKS = 6
CURVE_COLUMNS = [f"{CURVE_PREFIX}{w}" for w in range(N_WEEKS)]
ATTRIBUTE_COLUMNS = ("season", "color", "fabric", "extra")
SPLITS = ("train", "test")
GTRENDS_ATTRIBUTES = ("category", "color", "fabric")

VISUELLE_SPEC = CatalogueSpec(
    target=TARGET, curve_prefix=CURVE_PREFIX, require_cost_price=False, require_image=False
)

_CONTRACT_COLUMNS = [
    "sku_id", "launch_date", "category", "title", "description", "image",
    "cost_price", "list_price", "channel",
]  # fmt: skip
_RAW_NEEDED = [str(w) for w in range(N_WEEKS)] + [
    "external_code", "season", "category", "release_date", "color", "fabric", "extra",
]  # fmt: skip


def _clean(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).strip()


def _image_lookup(data_dir: Path) -> dict[str, str]:
    """external_code -> relative picture path, for the products whose picture is in the folder."""
    path = data_dir / "image_index.csv"
    if not path.is_file():
        log.warning("%s is missing: no product gets a picture", path)
        return {}
    index = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "external_code" not in index.columns or "local_image" not in index.columns:
        raise ValueError(f"{path}: expected columns external_code and local_image")
    return {
        code.strip(): image.strip()
        for code, image in zip(index["external_code"], index["local_image"])
        if image.strip()
    }


def load_visuelle(data_dir: Path, split: str) -> pd.DataFrame:
    """Read ``<data_dir>/<split>.csv`` (split = "train" or "test") into the catalogue contract.

    Sales are whole units (value x 1065); negative returns are clipped to 0 and counted in
    ``frame.attrs`` (see the module docstring). Prices are NaN because VISUELLE has none.
    """
    data_dir = Path(data_dir)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = data_dir / f"{split}.csv"
    raw = pd.read_csv(path, dtype={"external_code": str}, keep_default_na=False)
    missing = [c for c in _RAW_NEEDED if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")

    scaled = raw[[str(w) for w in range(N_WEEKS)]].apply(pd.to_numeric).to_numpy(float) * SCALE
    units = np.rint(scaled)
    off = np.abs(scaled - units).max() if len(units) else 0.0
    if off > 1e-6:
        raise ValueError(f"{path}: weekly values x {SCALE} are not whole units (off by {off:g})")
    negative = units < 0
    clipped_values = int(negative.sum())
    clipped_units = int(-units[negative].sum())
    if clipped_values:
        log.info(
            "%s: clipped %d negative weekly value(s) (%d returned units) to 0",
            path.name,
            clipped_values,
            clipped_units,
        )
    units = np.clip(units, 0, None).astype(np.int64)

    codes = raw["external_code"].map(_clean)
    category = raw["category"].map(_clean)
    color = raw["color"].map(_clean)
    fabric = raw["fabric"].map(_clean)
    extra = raw["extra"].map(_clean)
    season = raw["season"].map(_clean)
    images = _image_lookup(data_dir)

    frame = pd.DataFrame(
        {
            "sku_id": codes.astype(object),
            "launch_date": pd.to_datetime(raw["release_date"]).dt.normalize(),
            "category": category.astype(object),
            "title": [
                " ".join(w for w in (c, f, k) if w) for c, f, k in zip(color, fabric, category)
            ],
            "description": [
                ", ".join(
                    f"{label} {word}"
                    for label, word in (
                        ("season", s),
                        ("category", k),
                        ("colour", c),
                        ("fabric", f),
                        ("detail", e),
                    )
                    if word
                )
                for s, k, c, f, e in zip(season, category, color, fabric, extra)
            ],
            "image": [images.get(code, "") for code in codes],
            "cost_price": np.full(len(raw), np.nan),
            "list_price": np.full(len(raw), np.nan),
            "channel": [""] * len(raw),
        }
    )
    for w, column in enumerate(CURVE_COLUMNS):
        frame[column] = units[:, w]
    frame[TARGET] = units[:, :TARGET_WEEKS].sum(axis=1)
    frame["season"] = season.astype(object)
    frame["color"] = color.astype(object)
    frame["fabric"] = fabric.astype(object)
    frame["extra"] = extra.astype(object)
    frame = frame[[*_CONTRACT_COLUMNS, TARGET, *CURVE_COLUMNS, *ATTRIBUTE_COLUMNS]]
    frame.attrs["split"] = split
    frame.attrs["clipped_negative_values"] = clipped_values
    frame.attrs["clipped_negative_units"] = clipped_units
    return frame


def validate_visuelle(
    frame: pd.DataFrame, data_dir: Path, *, check_images: bool = True
) -> pd.DataFrame:
    """Run the catalogue contract (``VISUELLE_SPEC``, root = data_dir) on an adapter frame.

    Returns the contract's typed frame (with ``image_path`` resolved); raises ``CatalogueError``
    listing every problem if there is any.
    """
    typed, problems = validate_frame(
        frame, Path(data_dir), require_target=True, spec=VISUELLE_SPEC, check_images=check_images
    )
    if problems:
        raise CatalogueError(problems)
    if typed.empty:
        raise ValueError("the VISUELLE frame has no rows")
    return typed


def load_validated_visuelle(data_dir: Path, split: str) -> pd.DataFrame:
    """``load_visuelle`` then ``validate_visuelle`` (pictures decoded); raises on any problem.

    Returns the adapter frame (extra attribute columns kept) with the contract's absolute
    ``image_path`` added (None where there is no picture).
    """
    frame = load_visuelle(data_dir, split)
    typed = validate_visuelle(frame, data_dir, check_images=True)
    out = frame.copy()
    out["image_path"] = typed["image_path"].to_numpy()
    out.attrs.update(frame.attrs)
    return out


# ---------------------------------------------------------------- Google Trends
def load_gtrends(data_dir: Path) -> pd.DataFrame:
    """Weekly Google Trends, one float column per attribute word, indexed by week start ("date").

    A row dated d covers the days d .. d+6. The value -1 marks a word without data (three fabric
    words are -1 throughout) and becomes NaN.
    """
    path = Path(data_dir) / "gtrends.csv"
    table = pd.read_csv(path)
    if "date" not in table.columns:
        raise ValueError(f"{path}: expected a 'date' column")
    table["date"] = pd.to_datetime(table["date"]).dt.normalize()
    table = table.set_index("date").sort_index().astype(float)
    table.columns = [str(c) for c in table.columns]
    return table.mask(table < 0)


def gtrends_window_dates(
    gtrends: pd.DataFrame, release_date: pd.Timestamp | str, weeks: int = 52
) -> pd.DatetimeIndex:
    """The week starts of the ``weeks`` weeks wholly before ``release_date``, oldest first.

    A week starting on d is usable only if it is over before the release day (d + 7 days <=
    release), so no value measured on or after the release day enters the window. The weeks sit
    on the weekly grid of ``gtrends``; weeks outside the table come back as NaN from
    ``product_gtrends``.
    """
    if len(gtrends.index) == 0:
        raise ValueError("the Google Trends table is empty")
    release = pd.Timestamp(release_date).normalize()
    anchor = pd.Timestamp(gtrends.index[0])
    step = pd.Timedelta(days=7)
    last = anchor + step * int(np.floor((release - step - anchor) / step))
    return pd.DatetimeIndex([last - step * j for j in range(weeks - 1, -1, -1)])


def product_gtrends(
    products: pd.DataFrame,
    gtrends: pd.DataFrame,
    *,
    weeks: int = 52,
    attributes: tuple[str, ...] = GTRENDS_ATTRIBUTES,
) -> np.ndarray:
    """Google Trends of each product's category/colour/fabric words before its launch.

    Returns an array of shape (n_products, len(attributes), weeks), oldest week first, the last
    column being the last full week before ``launch_date`` (see ``gtrends_window_dates``). Words
    absent from the table and weeks outside it are NaN.
    """
    out = np.full((len(products), len(attributes), weeks), np.nan)
    if len(products) == 0:
        return out
    if len(gtrends.index) == 0:
        raise ValueError("the Google Trends table is empty")
    # Positions on the table's weekly grid (the same arithmetic as gtrends_window_dates, vectorised).
    anchor = pd.Timestamp(gtrends.index[0])
    grid = pd.DatetimeIndex(anchor + pd.Timedelta(days=7) * np.arange(len(gtrends.index)))
    table = gtrends.reindex(grid)  # the grid the windows are read from (gaps become NaN)
    release = pd.to_datetime(products["launch_date"]).dt.normalize().to_numpy("datetime64[D]")
    days = (release - np.datetime64(anchor.date(), "D")).astype(np.int64)
    last = np.floor((days - 7) / 7).astype(np.int64)  # the last week wholly before the release
    positions = last[:, None] + np.arange(-weeks + 1, 1)[None, :]
    inside = (positions >= 0) & (positions < len(grid))
    safe = np.clip(positions, 0, max(len(grid) - 1, 0))
    for j, attribute in enumerate(attributes):
        words = products[attribute].map(_clean).to_numpy()
        for word in np.unique(words):
            if word not in table.columns:
                continue
            rows = words == word
            values = table[word].to_numpy(float)[safe[rows]]
            out[rows, j] = np.where(inside[rows], values, np.nan)
    return out
