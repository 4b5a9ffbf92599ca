"""The similar-SKU index: for any SKU, the past SKUs it resembles by picture, by copy and jointly.

Only SKUs whose sales were already known when the query SKU launched may be used: launched at least
``gap_days`` before it (7 for 7-day sales). That is what keeps analog features honest in backtests.

Why exact search by hand up to a size: it is cosine similarity (a matrix product on unit vectors)
under a per-query mask "launched before this SKU". scikit-learn's brute-force ``NearestNeighbors``
does the same product but cannot mask per query, and an approximate index is slower than one BLAS
call at 10^3-10^4 SKUs. Training asks for every SKU's analogs, so exact search costs n^2: past
``exact_max_rows`` allowed SKUs, faiss graphs (``features.ann``) propose candidates per kind and
they are re-scored here exactly, under the same mask (an approximation can miss an analog, never
return one launched too late).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

EPOCH = np.datetime64("1970-01-01", "D")


def day_numbers(dates: pd.Series | pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    return (pd.to_datetime(pd.Series(dates)).to_numpy().astype("datetime64[D]") - EPOCH).astype(np.int64)


def _clean(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectors with NaN rows (no picture) set to zero, and which rows were present.

    Float64 on purpose: a float32 BLAS product depends on the batch's shape and memory alignment,
    so one SKU scored alone (serving) and in a batch (training) would differ in the last bits. In
    float64 the difference is ~1e-16 and vanishes when ``search`` rounds similarities to float32.
    """
    present = ~np.isnan(vectors).any(axis=1)
    return np.where(present[:, None], vectors, 0.0).astype(np.float64), present


def _compact(vectors: np.ndarray) -> np.ndarray:
    """Float32 when that holds the very same numbers (encoders give float32): half the file."""
    small = vectors.astype(np.float32)
    return small if np.array_equal(small.astype(vectors.dtype), vectors) else vectors


@dataclass(frozen=True)
class Override:
    """The merchandiser's say over one SKU's analogs (as in Nextail's comparables or Oracle Retail's
    like-items): past SKUs never to use, and past SKUs to use whatever their rank. A pinned SKU
    enters the set with the similarity of the set's closest analog (the merchandiser vouches for
    it); it must still have launched ``gap_days`` before the SKU, or its sales were not known."""

    exclude: tuple[str, ...] = ()
    pin: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.exclude or self.pin)


# Queries re-scored at once on the approximate path: (rows x candidates x dimensions) floats.
APPROXIMATE_CHUNK = 32


@dataclass
class _Query:
    """A block of query rows, as every search path takes them."""

    picture: np.ndarray
    copy: np.ndarray
    days: np.ndarray
    exclude: np.ndarray | None
    overrides: list[Override | None] | None


@dataclass
class Neighbours:
    index: np.ndarray  # (n, k) row numbers into the history, -1 where fewer than k exist
    similarity: np.ndarray  # (n, k) cosine similarity, NaN where index is -1

    def head(self, k: int) -> Neighbours:
        """The k best of each row (the rows are best first)."""
        return Neighbours(self.index[:, :k], self.similarity[:, :k])


class AnalogIndex:
    """Past SKUs' vectors, launch days and sales; answers time-restricted similarity queries."""

    def __init__(
        self,
        sku_ids: np.ndarray,
        launch_dates: pd.Series,
        sales: np.ndarray,
        picture: np.ndarray,
        copy: np.ndarray,
        *,
        curve_shares: np.ndarray | None = None,
        list_price: np.ndarray | None = None,
        picture_weight: float = 0.5,
        gap_days: int = 7,
        exact_max_rows: int | None = None,
    ):
        self.sku_ids = np.asarray(sku_ids).astype(str)
        self.days = day_numbers(launch_dates)
        self.sales = np.asarray(sales, dtype=np.float64)
        self.log_sales = np.log1p(np.clip(self.sales, 0, None))
        self.picture, self.has_picture = _clean(picture)
        self.copy, _ = _clean(copy)
        self.curve_shares = curve_shares
        self.log_price = np.log(np.asarray(list_price, dtype=np.float64)) if list_price is not None else None
        self.picture_weight = picture_weight
        self.gap_days = gap_days
        self.exact_max_rows = exact_max_rows  # None: always exact (a model saved before the setting)
        self._graphs: dict | None = None

    def __len__(self) -> int:
        return len(self.sku_ids)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The index as plain arrays (what a saved model stores); ``from_arrays`` rebuilds it."""
        arrays = {"sku_ids": self.sku_ids, "days": self.days, "sales": self.sales,
                  "picture": _compact(self.picture), "copy": _compact(self.copy), "has_picture": self.has_picture,
                  "picture_weight": np.float64(self.picture_weight), "gap_days": np.int64(self.gap_days)}
        exact_max = None if self.exact_max_rows is None else np.int64(self.exact_max_rows)
        optional = {"curve_shares": self.curve_shares, "log_price": self.log_price, "exact_max_rows": exact_max}
        return arrays | {name: value for name, value in optional.items() if value is not None}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> AnalogIndex:
        """The index ``to_arrays`` wrote, bit for bit (vectors are not cleaned again)."""
        index = cls.__new__(cls)
        index.sku_ids = arrays["sku_ids"].astype(str)
        index.days = arrays["days"].astype(np.int64)
        index.sales = arrays["sales"].astype(np.float64)
        index.log_sales = np.log1p(np.clip(index.sales, 0, None))
        index.picture = arrays["picture"].astype(np.float64)
        index.copy = arrays["copy"].astype(np.float64)
        index.has_picture = arrays["has_picture"].astype(bool)
        index.curve_shares = arrays.get("curve_shares")
        index.log_price = arrays.get("log_price")
        index.picture_weight = float(arrays["picture_weight"])
        index.gap_days = int(arrays["gap_days"])
        index.exact_max_rows = int(arrays["exact_max_rows"]) if "exact_max_rows" in arrays else None
        index._graphs = None
        return index

    def similarity(self, picture: np.ndarray, copy: np.ndarray, kind: str = "joint") -> np.ndarray:
        """Cosine similarity of query rows to every past SKU; joint falls back to copy without pictures."""
        return self._similarities(picture, copy, (kind,))[kind]

    def _similarities(self, picture: np.ndarray, copy: np.ndarray, kinds: tuple[str, ...],
                      columns: slice | np.ndarray = slice(None)) -> dict[str, np.ndarray]:
        """``similarity`` of each kind, from one picture and one copy product (not one per kind),
        against the past SKUs ``columns`` (default all)."""
        q_picture, q_has = _clean(picture)
        q_copy, _ = _clean(copy)
        copy_sim = q_copy @ self.copy[columns].T
        out = {"copy": copy_sim} if "copy" in kinds else {}
        if "picture" in kinds or "joint" in kinds:
            picture_sim = q_picture @ self.picture[columns].T
            both = q_has[:, None] & self.has_picture[columns][None, :]
            if "picture" in kinds:
                out["picture"] = np.where(both, picture_sim, np.nan)
            if "joint" in kinds:
                w = self.picture_weight
                out["joint"] = np.where(both, w * picture_sim + (1 - w) * copy_sim, copy_sim)
        return out

    def search(
        self,
        picture: np.ndarray,
        copy: np.ndarray,
        launch_dates: pd.Series,
        k: int,
        *,
        kind: str = "joint",
        exclude_ids: np.ndarray | None = None,
        overrides: list[Override | None] | None = None,
        chunk: int = 1024,
    ) -> Neighbours:
        """The k most similar past SKUs launched at least ``gap_days`` before each query SKU
        (``overrides``: per query row, analogs excluded or pinned by a person)."""
        return self.search_kinds(picture, copy, launch_dates, k, (kind,), exclude_ids=exclude_ids,
                                 overrides=overrides, chunk=chunk)[kind]

    def search_kinds(
        self,
        picture: np.ndarray,
        copy: np.ndarray,
        launch_dates: pd.Series,
        k: int,
        kinds: tuple[str, ...],
        *,
        exclude_ids: np.ndarray | None = None,
        overrides: list[Override | None] | None = None,
        chunk: int = 1024,
    ) -> dict[str, Neighbours]:
        """``search`` for several kinds at once: the similarity products are computed once per chunk
        and shared by the kinds (the same numbers as one search per kind)."""
        n = len(picture)
        k = min(k, len(self))
        index = {kind: np.full((n, k), -1, dtype=np.int64) for kind in kinds}
        sims = {kind: np.full((n, k), np.nan, dtype=np.float32) for kind in kinds}
        query_days = day_numbers(launch_dates)
        exclude = np.asarray(exclude_ids).astype(str) if exclude_ids is not None else None
        approximate = self._approximate(query_days)
        for rows, search in ((np.flatnonzero(~approximate), self._exact), (np.flatnonzero(approximate), self._rescored)):
            step = chunk if search == self._exact else APPROXIMATE_CHUNK
            for start in range(0, len(rows), step):
                block = rows[start:start + step] if len(rows) < n else slice(start, start + step)
                query = _Query(picture[block], copy[block], query_days[block],
                               None if exclude is None else exclude[block],
                               None if overrides is None else [overrides[i] for i in np.arange(n)[block]])
                for kind, (top, top_s) in search(query, kinds, k).items():
                    index[kind][block], sims[kind][block] = top, top_s
        return {kind: Neighbours(index[kind], sims[kind]) for kind in kinds}

    def _exact(self, query: _Query, kinds: tuple[str, ...], k: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Every past SKU scored: the k best allowed of each kind."""
        allowed = self.days[None, :] <= (query.days[:, None] - self.gap_days)
        if query.exclude is not None:
            allowed &= self.sku_ids[None, :] != query.exclude[:, None]
        columns = _usable(allowed)
        out = {}
        for kind, similarity in self._similarities(query.picture, query.copy, kinds, columns).items():
            s = _widen(similarity.astype(np.float32), columns, len(self))
            s = np.where(allowed & ~np.isnan(s), s, -np.inf)
            if query.overrides is not None:
                s = self._override(s, query.overrides)
            out[kind] = _top(s, k)
        return out

    def _approximate(self, query_days: np.ndarray) -> np.ndarray:
        """Which queries may use more past SKUs than exact search is kept for."""
        if self.exact_max_rows is None or len(self) <= self.exact_max_rows:
            return np.zeros(len(query_days), dtype=bool)
        return self._prefix(query_days) > self.exact_max_rows

    def _prefix(self, query_days: np.ndarray) -> np.ndarray:
        """How many past SKUs each query may use (they come first in launch-day order)."""
        return np.searchsorted(self._ann()["days"] if self._graphs else np.sort(self.days),
                               query_days - self.gap_days, side="right")

    def prepare(self) -> AnalogIndex:
        """Build the approximate search's graphs now if this index will use them (a service does it
        while loading, so that no request waits for it); a no-op for an index kept exact."""
        if self.exact_max_rows is not None and len(self) > self.exact_max_rows:
            self._ann()
        return self

    def _ann(self) -> dict:
        """The faiss graphs of pictures and copies in launch-day order, built on first use."""
        if self._graphs is None:
            from features.ann import PrefixGraphs

            order = np.argsort(self.days, kind="stable")
            self._graphs = {"order": order, "days": self.days[order],
                            "picture": PrefixGraphs(self.picture[order], self.exact_max_rows),
                            "copy": PrefixGraphs(self.copy[order], self.exact_max_rows)}
        return self._graphs

    def _rescored(self, query: _Query, kinds: tuple[str, ...], k: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Candidates from the graphs (picture and copy, plus pinned SKUs), scored exactly and masked
        exactly as ``_exact`` does; returns row numbers of the history like ``_exact``."""
        candidates = self._candidates(query)
        if candidates.shape[1] < k:  # more analogs asked for than candidates proposed
            padding = np.full((len(candidates), k - candidates.shape[1]), len(self), dtype=np.int64)
            candidates = np.concatenate([candidates, padding], axis=1)
        valid = candidates < len(self)
        safe = np.where(valid, candidates, 0)
        q_picture, q_has = _clean(query.picture)
        q_copy, _ = _clean(query.copy)
        copy_sim = np.einsum("rd,rwd->rw", q_copy, self.copy[safe])
        picture_sim = np.einsum("rd,rwd->rw", q_picture, self.picture[safe])
        both = q_has[:, None] & self.has_picture[safe]
        w = self.picture_weight
        similarity = {"copy": copy_sim, "picture": np.where(both, picture_sim, np.nan),
                      "joint": np.where(both, w * picture_sim + (1 - w) * copy_sim, copy_sim)}
        allowed = valid & (self.days[safe] <= (query.days[:, None] - self.gap_days))
        if query.exclude is not None:
            allowed &= self.sku_ids[safe] != query.exclude[:, None]
        out = {}
        for kind in kinds:
            s = similarity[kind].astype(np.float32)
            s = np.where(allowed & ~np.isnan(s), s, -np.inf)
            if query.overrides is not None:
                s = self._override(s, query.overrides, candidates)
            top, top_s = _top(s, k)
            out[kind] = (np.where(top >= 0, np.take_along_axis(safe, np.maximum(top, 0), axis=1), -1), top_s)
        return out

    def _candidates(self, query: _Query) -> np.ndarray:
        """Row numbers proposed for each query, ascending, duplicates and padding set to ``len(self)``."""
        graphs = self._ann()
        _, q_has = _clean(query.picture)
        prefix = self._prefix(query.days)
        proposed = [graphs["copy"].search(_clean(query.copy)[0], prefix)]
        picture = np.full_like(proposed[0], -1)
        if q_has.any():
            picture[q_has] = graphs["picture"].search(_clean(query.picture[q_has])[0], prefix[q_has])
        proposed.append(picture)
        found = np.concatenate(proposed, axis=1)
        rows = np.where(found >= 0, graphs["order"][np.maximum(found, 0)], len(self))
        if query.overrides is not None:
            pins = [self.positions(o.pin) if o else np.empty(0, dtype=np.int64) for o in query.overrides]
            width = max(len(p) for p in pins)
            pinned = np.full((len(rows), width), len(self), dtype=np.int64)
            for row, p in enumerate(pins):
                pinned[row, :len(p)] = p
            rows = np.concatenate([rows, pinned], axis=1)
        rows = np.sort(rows, axis=1)
        rows[:, 1:][rows[:, 1:] == rows[:, :-1]] = len(self)
        return np.sort(rows, axis=1)

    def positions(self, sku_ids: tuple[str, ...]) -> np.ndarray:
        """Row numbers of past SKUs by id (unknown ids are dropped: callers validate them first)."""
        return np.flatnonzero(np.isin(self.sku_ids, np.asarray(sku_ids, dtype=str)))

    def _override(self, s: np.ndarray, overrides: list[Override | None],
                  candidates: np.ndarray | None = None) -> np.ndarray:
        """Similarities with excluded SKUs removed and usable pinned SKUs lifted to the row's best
        (``candidates``: the row numbers of ``s``'s columns, when not every past SKU was scored)."""
        s = s.copy()
        for row, override in enumerate(overrides):
            if not override:
                continue
            columns = (lambda ids: self.positions(ids)) if candidates is None else (
                lambda ids: np.flatnonzero(np.isin(candidates[row], self.positions(ids))))
            s[row, columns(override.exclude)] = -np.inf
            pins = columns(override.pin)
            pins = pins[np.isfinite(s[row, pins])]  # launched too late: its sales were not known
            if len(pins):
                s[row, pins] = max(float(np.max(s[row])), float(np.max(s[row, pins])))
        return s


ANALOG_KINDS = ("joint", "picture", "copy")
# log1p of the joint analogs' weighted mean of units: the like-item forecast a blend can lean on
LIKE_ITEMS = "joint_log_wmean_sales"


def _usable(allowed: np.ndarray) -> slice | np.ndarray:
    """The past SKUs some query row of a block may use. Training queries every SKU against the
    SKUs launched before it, so a block of early launches needs only the first columns: the
    similarity products skip the rest (the same numbers where used; the rest were masked anyway)."""
    used = np.flatnonzero(allowed.any(axis=0))
    if len(used) == allowed.shape[1]:
        return slice(None)
    if len(used) == 0 or used[-1] == len(used) - 1:  # a prefix (history sorted by launch): a view
        return slice(0, len(used))
    return used


def _widen(s: np.ndarray, columns: slice | np.ndarray, width: int) -> np.ndarray:
    """A block of similarities to ``columns`` as a block over all ``width`` past SKUs (NaN elsewhere:
    masked like any unusable SKU)."""
    if isinstance(columns, slice) and columns == slice(None):
        return s
    out = np.full((len(s), width), np.nan, dtype=s.dtype)
    out[:, columns] = s
    return out


def _top(s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise k best of a similarity block, best first: (index or -1, similarity or NaN)."""
    top = np.argpartition(-s, kth=k - 1, axis=1)[:, :k]
    top_s = np.take_along_axis(s, top, axis=1)
    order = np.argsort(-top_s, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    top_s = np.take_along_axis(top_s, order, axis=1)
    valid = np.isfinite(top_s)
    return np.where(valid, top, -1), np.where(valid, top_s, np.nan)


def _weighted(values: np.ndarray, sims: np.ndarray, valid: np.ndarray, temperature: float) -> np.ndarray:
    """Similarity-weighted mean (softmax over similarity): the closest analogs count most."""
    logits = np.where(valid, sims / temperature, -np.inf)
    top = np.max(np.where(valid, logits, -np.inf), axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    weights = np.where(valid, np.exp(logits - top), 0.0)
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (weights * np.where(valid, values, 0.0)).sum(axis=1) / total, np.nan)


def analog_features(
    index: AnalogIndex,
    picture: np.ndarray,
    copy: np.ndarray,
    launch_dates: pd.Series,
    *,
    k: int,
    floor: float,
    log_list_price: np.ndarray | None = None,
    exclude_ids: np.ndarray | None = None,
    overrides: list[Override | None] | None = None,
    temperature: float = 0.05,
    found: dict[str, Neighbours] | None = None,
) -> pd.DataFrame:
    """Features drawn from each SKU's analogs: weighted mean and median of log sales, the weighted
    mean of units (``LIKE_ITEMS``, in log1p), top-1 similarity, how many analogs clear the
    similarity floor, and the price gap to them.
    ``found``: the same search (``ANALOG_KINDS``, ``k``, these overrides) already made by the caller."""
    columns: dict[str, np.ndarray] = {}
    if found is None:
        found = index.search_kinds(picture, copy, launch_dates, k, ANALOG_KINDS, exclude_ids=exclude_ids,
                                   overrides=overrides)
    for kind in ANALOG_KINDS:
        nb = found[kind]
        valid = nb.index >= 0
        logs = np.where(valid, index.log_sales[np.maximum(nb.index, 0)], np.nan)
        sims = np.nan_to_num(nb.similarity, nan=-np.inf)
        columns[f"{kind}_wmean_log_sales"] = _weighted(logs, sims, valid, temperature)
        with np.errstate(all="ignore"):
            columns[f"{kind}_top1_similarity"] = np.where(valid[:, 0], nb.similarity[:, 0], np.nan)
        if kind != "joint":
            continue
        columns["joint_median_log_sales"] = np.array(
            [np.median(row[ok]) if ok.any() else np.nan for row, ok in zip(logs, valid)]
        )
        columns["joint_top1_log_sales"] = np.where(valid[:, 0], logs[:, 0], np.nan)
        # The like-item rule in units: the analogs' weighted mean of sales (not of log sales, which
        # is the median-like ``wmean_log_sales``): a few big sellers among the analogs lift it, which
        # ranks new SKUs better (``features.forecast.QuantileBoosters.analog_weight`` blends it in).
        units = np.where(valid, np.clip(index.sales[np.maximum(nb.index, 0)], 0, None), np.nan)
        columns[LIKE_ITEMS] = np.log1p(_weighted(units, sims, valid, temperature))
        columns["joint_n_close"] = (np.nan_to_num(nb.similarity, nan=-1) >= floor).sum(axis=1).astype(float)
        columns["joint_n_analogs"] = valid.sum(axis=1).astype(float)
        if index.log_price is not None and log_list_price is not None:
            prices = np.where(valid, index.log_price[np.maximum(nb.index, 0)], np.nan)
            ok = valid & np.isfinite(prices)
            columns["joint_log_price_gap"] = log_list_price - _weighted(prices, sims, ok, temperature)
    return pd.DataFrame(columns)


def analog_curve(
    index: AnalogIndex, neighbours: Neighbours, temperature: float = 0.05
) -> np.ndarray | None:
    """Similarity-weighted mean share curve (each row sums to 1) of the analogs; None without curves."""
    if index.curve_shares is None:
        return None
    valid = neighbours.index >= 0
    sims = np.nan_to_num(neighbours.similarity, nan=-np.inf)
    shares = index.curve_shares[np.maximum(neighbours.index, 0)]  # (n, k, periods)
    curve = np.stack(
        [_weighted(shares[:, :, p], sims, valid, temperature) for p in range(shares.shape[2])], axis=1
    )
    fallback = index.curve_shares.mean(axis=0)
    curve = np.where(np.isnan(curve), fallback[None, :], curve)
    return curve / curve.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------- attributes as analog keys
def attribute_codes(values: pd.Series, known: list[str]) -> np.ndarray:
    """Each value's position in ``known``; -1 where absent or not known (an unknown value is absent:
    nothing in the history shares it)."""
    lookup = {value: i for i, value in enumerate(known)}
    return np.array([lookup.get(v, -1) if isinstance(v, str) else -1 for v in values], dtype=np.int64)


def same_value_sales(codes: np.ndarray, days: np.ndarray, log_sales: np.ndarray, query_codes: np.ndarray,
                     query_days: np.ndarray, gap_days: int, prior_weight: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """Same-attribute analogs: for each query, the past SKUs with the same value launched at least
    ``gap_days`` before it (their sales were known, as for every analog). Returns their mean log
    sales, shrunk towards the mean of every such past SKU by ``prior_weight`` SKUs (one SKU of a
    value says little), and how many there were. NaN mean where the query's value is absent or
    nothing launched early enough."""
    cut = query_days - gap_days
    overall_n, overall_sum = _prefix_sums(np.zeros_like(codes), days, log_sales, np.zeros_like(query_codes), cut)
    n, total = _prefix_sums(codes, days, log_sales, query_codes, cut)
    with np.errstate(invalid="ignore", divide="ignore"):
        prior = overall_sum / overall_n
        mean = (total + prior_weight * prior) / (n + prior_weight)
    mean = np.where((query_codes >= 0) & (overall_n > 0), mean, np.nan)
    return mean, np.where(query_codes >= 0, n, np.nan).astype(float)


def _prefix_sums(codes: np.ndarray, days: np.ndarray, values: np.ndarray, query_codes: np.ndarray,
                 cut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Count and sum of ``values`` over past rows with the query's code and a day <= its ``cut``:
    rows sorted by (code, day), two binary searches per query (no n x m matrix)."""
    span = np.int64(1) << 32  # days since 1970 fit far below this; codes are small
    keys = codes.astype(np.int64) * span + days.astype(np.int64)
    order = np.argsort(keys, kind="stable")
    keys, sums = keys[order], np.concatenate([[0.0], np.cumsum(values[order])])
    q = np.maximum(query_codes, 0).astype(np.int64) * span
    lo = np.searchsorted(keys, q, side="left")
    hi = np.searchsorted(keys, q + np.clip(cut, -1, span - 1), side="right")
    hi = np.maximum(hi, lo)
    return (hi - lo).astype(float), sums[hi] - sums[lo]


def attribute_agreement(codes: np.ndarray, query_codes: np.ndarray, neighbours: Neighbours) -> np.ndarray:
    """Per query, the share of (analog, attribute) pairs that agree, over its joint analogs and the
    attributes it has: how alike its picture-and-copy analogs are on the declared attributes. NaN
    without analogs or attributes. ``codes`` (m, a) and ``query_codes`` (n, a) from ``attribute_codes``."""
    valid = neighbours.index >= 0
    theirs = codes[np.maximum(neighbours.index, 0)]  # (n, k, a)
    known = valid[:, :, None] & (query_codes[:, None, :] >= 0)
    agree = known & (theirs == query_codes[:, None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(known.any(axis=(1, 2)), agree.sum(axis=(1, 2)) / known.sum(axis=(1, 2)), np.nan)
