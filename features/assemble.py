"""The one feature path: catalogue rows (+ their embeddings) -> feature matrix.

Training fits a ``FeaturePipeline`` on history and calls ``transform`` on it; serving loads the same
fitted object from the model and calls the same ``transform`` on new SKUs. There is no other path.

A fitted pipeline is saved as plain files in one folder (``save`` / ``load``; no pickles):

- ``pipeline.json``: every field of ``FeaturePipeline`` that JSON can hold (encoder ids, target,
  curve columns, category vocabularies, component counts, k, floor, feature names, and any field
  added later), written generically.
- ``index.npz``: the analog index (``AnalogIndex.to_arrays``): ``sku_ids``, ``days`` (launch day
  numbers since 1970-01-01), ``sales``, ``picture`` / ``copy`` (unit vectors, zero rows where
  missing; float32 when that is exact), ``has_picture``, optional ``curve_shares`` and
  ``log_price``, and the scalars ``picture_weight`` and ``gap_days``.
- ``history.parquet``: sku_id, title, category, launch_date, the target and the attribute columns
  of every past SKU (what is shown beside an analog; the attributes key the same-attribute analogs).
- ``projection.json`` + ``projection.npz``: the time-honest ridge read-out (origins, alpha,
  fallback, settings; the snapshots' coefficients and intercepts; the PCA reducers' means and
  components), see ``TimeHonestRidge.save``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from features.analogs import (
    ANALOG_KINDS,
    AnalogIndex,
    Neighbours,
    Override,
    analog_curve,
    analog_features,
    attribute_agreement,
    attribute_codes,
    day_numbers,
    same_value_sales,
)
from features.catalogue import Catalogue
from features.config import Settings
from features.embed import Embeddings
from features.files import plain_fields, read_json, read_table, write_json, write_table
from features.linear import Reducer
from features.novelty import picture_category_vote
from features.projection import TimeHonestRidge
from features.schema import Completion, flag

CATEGORICAL = ("category", "channel")
OVERRIDE = "analog_override"  # column of features.analogs.Override: a person's say over the analogs
# The projection's forecast of log1p(launch sales): the forecaster boosts from it.
BASE_MARGIN = "embedding_log_sales"
_STORED_APART = ("index", "history", "projection")  # saved in files of their own, not pipeline.json


def _reduce(pca: Reducer | None, vectors: np.ndarray, prefix: str, n: int) -> pd.DataFrame:
    out = np.full((len(vectors), n), np.nan)
    if pca is not None:
        present = ~np.isnan(vectors).any(axis=1)
        if present.any():
            # float64 then rounded to float32: the same row gives the same bits alone or in a batch
            # (see analogs._clean); a float32 product does not.
            reduced = pca.transform(vectors[present].astype(np.float64))[:, :n].astype(np.float32)
            out[present, : reduced.shape[1]] = reduced
    return pd.DataFrame(out, columns=[f"{prefix}_pc{i}" for i in range(n)])


def curve_shares(frame: pd.DataFrame, curve_columns: list[str]) -> np.ndarray | None:
    """Each SKU's sales curve as shares of its total (uniform where the total is zero)."""
    if not curve_columns:
        return None
    curve = frame[curve_columns].to_numpy(dtype=float).clip(min=0)
    total = curve.sum(axis=1, keepdims=True)
    uniform = np.full_like(curve, 1.0 / curve.shape[1])
    return np.where(total > 0, curve / np.where(total > 0, total, 1), uniform)


@dataclass
class FeaturePipeline:
    """Everything fitted on history that turns SKUs into features: reducers, vocabularies, index."""

    picture_encoder: str
    copy_encoder: str
    target: str
    curve_columns: list[str]
    categories: dict[str, list[str]]
    picture_components: int
    copy_components: int
    index: AnalogIndex
    history: pd.DataFrame  # sku_id, title, category, launch_date, target: shown beside analogs
    projection: TimeHonestRidge
    k: int = 20
    floor: float = 0.8
    feature_names: list[str] = field(default_factory=list)
    # What an absent list price becomes (features.schema.Completion): category -> usual markup.
    markups: dict[str, float] = field(default_factory=dict)
    markup: float = 2.5
    # Attribute columns of the catalogue (colour, fabric...) -> the values the history holds.
    attributes: dict[str, list[str]] = field(default_factory=dict)
    # Share of the history without a cost price / a picture: a model that met them absent in
    # training may be asked without them (serving.predictor), with the meaning training gave.
    absent_share: dict[str, float] = field(default_factory=dict)

    @classmethod
    def fit(cls, catalogue: Catalogue, embeddings: Embeddings, settings: Settings) -> FeaturePipeline:
        frame = catalogue.frame.reset_index(drop=True)
        target = catalogue.spec.target
        curve_columns = catalogue.curve_columns
        categories = {c: sorted(v for v in frame[c].dropna().astype(str).unique() if v) for c in CATEGORICAL}
        completion = Completion.fit(frame, settings.default_markup)
        attributes = {c: sorted({v for v in frame[c] if isinstance(v, str) and v}) for c in catalogue.spec.attributes or ()}
        index = AnalogIndex(
            frame["sku_id"].to_numpy(),
            frame["launch_date"],
            frame[target].to_numpy(),
            embeddings.picture,
            embeddings.copy,
            curve_shares=curve_shares(frame, curve_columns),
            list_price=frame["list_price"].to_numpy(dtype=float),
            picture_weight=settings.picture_weight,
            gap_days=settings.analog_gap_days,
            exact_max_rows=settings.analog_exact_max_rows,
        )
        pipeline = cls(
            picture_encoder=embeddings.picture_encoder,
            copy_encoder=embeddings.copy_encoder,
            target=target,
            curve_columns=curve_columns,
            categories=categories,
            picture_components=settings.picture_components,
            copy_components=settings.copy_components,
            index=index,
            # Its PCA axes double as the LightGBM's embedding features (the first few of them).
            projection=TimeHonestRidge(
                categories["category"],
                gap_days=settings.analog_gap_days,
                refit_days=settings.projection_refit_days,
                components=max(settings.projection_components, settings.picture_components, settings.copy_components),
            ).fit(frame, embeddings.picture, embeddings.copy, np.log1p(np.clip(frame[target].to_numpy(dtype=float), 0, None))),
            history=frame[["sku_id", "title", "category", "launch_date", target, *attributes]].copy(),
            k=settings.analog_k,
            floor=settings.similarity_floor,
            markups=completion.markups,
            markup=completion.markup,
            attributes=attributes,
            absent_share={"cost_price": float(frame["cost_price"].isna().mean()),
                          "image": float(np.isnan(embeddings.picture).any(axis=1).mean())},
        )
        pipeline.feature_names = list(pipeline.transform(frame.head(1), _head(embeddings, 1)).columns)
        return pipeline

    def check_encoders(self, embeddings: Embeddings) -> None:
        if (embeddings.picture_encoder, embeddings.copy_encoder) != (self.picture_encoder, self.copy_encoder):
            raise ValueError(
                f"embeddings from {embeddings.picture_encoder}/{embeddings.copy_encoder} do not match "
                f"the pipeline's encoders {self.picture_encoder}/{self.copy_encoder}"
            )

    def complete(self, frame: pd.DataFrame, embeddings: Embeddings, today: date | None = None) -> pd.DataFrame:
        """Validated rows with every absent optional field given its one meaning (features.schema).

        An absent category is the one its most similar past SKUs share (similarity-weighted vote
        over the ``k`` nearest launched before it), flagged ``category_assumed``: a merchandiser
        who leaves it out gets the category the picture and copy say, not "no category"."""
        completion = Completion(self.markups, self.markup)
        frame = completion.dates(frame.reset_index(drop=True), today)
        absent = frame["category"].isna().to_numpy()
        guessed = frame["category"].to_numpy(dtype=object).copy()
        if absent.any():
            nb = self.index.search(embeddings.picture[absent], embeddings.copy[absent],
                                   frame.loc[absent, "launch_date"], self.k)
            guessed[absent] = self._vote(nb)
        frame["category"] = guessed
        frame["category_assumed"] = absent | flag(frame, "category_assumed")
        return completion.prices(frame)

    def novelty(self, frame: pd.DataFrame, embeddings: Embeddings,
                plain: dict[str, Neighbours] | None = None, completed: bool = False) -> pd.DataFrame:
        """Per row: best joint / picture / copy similarity to an earlier SKU, the category the
        picture's nearest past SKUs vote for and the declared category's share of that vote
        (features.novelty). ``category_share`` is NaN where the category was assumed (nothing to check).
        ``plain``: the rows' ``search`` made without overrides (novelty never follows a person's pins);
        ``completed``: the rows are ``complete``'s answer already (a forecast completes them once)."""
        frame = frame if completed else self.complete(frame, embeddings)
        found = plain if plain is not None else self.index.search_kinds(
            embeddings.picture, embeddings.copy, frame["launch_date"], 1, ("joint", "picture", "copy"))
        top = {kind: found[kind].similarity[:, 0].astype(float) for kind in ("joint", "picture", "copy")}
        winner, share = picture_category_vote(self.index, self.history["category"].astype(str).to_numpy(),
                                              embeddings.picture, embeddings.copy, frame["launch_date"],
                                              frame["category"].astype(str), self.k,
                                              None if plain is None else plain["picture"])
        share = np.where(frame["category_assumed"].to_numpy(dtype=bool), np.nan, share)
        return pd.DataFrame({**top, "picture_category": winner, "category_share": share,
                             "category": frame["category"].to_numpy(dtype=object)})

    def _vote(self, nb: Neighbours) -> list[str | None]:
        """The category each row's neighbours vote for: ``features.novelty.category_votes`` then
        ``idxmax``, for all rows at once (one pandas group-by per row cost ~1 ms, 3 s a training run)."""
        labels, codes = np.unique(self.history["category"].astype(str).to_numpy(), return_inverse=True)
        totals = vote_totals(codes, len(labels), nb)
        found = (nb.index >= 0).any(axis=1)
        winners = labels[np.argmax(totals, axis=1)] if len(labels) else np.array([], dtype=str)
        return [str(winners[i]) if found[i] else None for i in range(len(found))]

    def transform(self, frame: pd.DataFrame, embeddings: Embeddings, today: date | None = None,
                  found: dict[str, Neighbours] | None = None, completed: bool = False) -> pd.DataFrame:
        """Feature matrix for validated rows; analogs only among SKUs launched before each row.
        ``today`` stands in for an absent launch date (default: the real today); ``found``: the
        rows' ``search`` already made (a forecast shares it with the curve and the SKUs shown);
        ``completed``: the rows are ``complete``'s answer already (pandas work of ~15 ms a SKU)."""
        self.check_encoders(embeddings)
        frame = frame if completed else self.complete(frame, embeddings, today)
        cost = frame["cost_price"].to_numpy(dtype=float)
        price = frame["list_price"].to_numpy(dtype=float)
        month = pd.to_datetime(frame["launch_date"]).dt.day_of_year.to_numpy(dtype=float)
        angle = 2 * np.pi * (month - 1) / 365.25
        with np.errstate(all="ignore"):
            base = pd.DataFrame(
                {
                    "log_cost_price": np.log(cost),
                    "log_list_price": np.log(price),
                    "margin": (price - cost) / price,
                    "season_sin": np.sin(angle),
                    "season_cos": np.cos(angle),
                    "list_price_assumed": frame["list_price_assumed"].to_numpy(dtype=float),
                    "category_assumed": frame["category_assumed"].to_numpy(dtype=float),
                }
            )
        for column, known in self.categories.items():
            values = frame[column].astype("string").fillna("")
            base[column] = pd.Categorical(values.where(values.isin(known)), categories=known)
        if found is None:  # searched here once: the analog and the attribute features read it
            found = self.index.search_kinds(embeddings.picture, embeddings.copy, frame["launch_date"], self.k,
                                            ANALOG_KINDS, overrides=overrides_of(frame))
        analogs = analog_features(
            self.index,
            embeddings.picture,
            embeddings.copy,
            frame["launch_date"],
            k=self.k,
            floor=self.floor,
            log_list_price=np.log(price),
            overrides=overrides_of(frame),
            found=found,
        )
        parts = [
            base,
            _reduce(self.projection.picture_reducer, embeddings.picture, "picture", self.picture_components),
            _reduce(self.projection.copy_reducer, embeddings.copy, "copy", self.copy_components),
            analogs,
            self._attribute_features(frame, found["joint"]),
            # Rounded to float32 like the other features: a row scores the same alone or in a batch.
            pd.DataFrame({BASE_MARGIN: self.projection.predict(frame, embeddings.picture, embeddings.copy).astype(np.float32)}),
        ]
        features = pd.concat(parts, axis=1)
        if self.feature_names:
            features = features.reindex(columns=self.feature_names)
        return features

    def _attribute_features(self, frame: pd.DataFrame, joint: Neighbours) -> pd.DataFrame:
        """Per attribute column: its value as a categorical (absent or unknown: missing), and its
        same-attribute analogs' shrunk mean log sales and count (past SKUs with the same value,
        launched early enough); then how alike the joint analogs are on the attributes."""
        out: dict[str, object] = {}
        days = day_numbers(frame["launch_date"])
        codes, query = [], []
        for i, (column, known) in enumerate(self.attributes.items()):
            name = attribute_feature(i, column)
            values = frame[column] if column in frame else pd.Series([None] * len(frame))
            mine = attribute_codes(values, known)
            theirs = attribute_codes(self.history[column], known)
            out[name] = pd.Categorical.from_codes(mine, categories=known) if known else np.full(len(frame), np.nan)
            mean, count = same_value_sales(theirs, self.index.days, self.index.log_sales, mine, days,
                                           self.index.gap_days)
            out[f"{name}_log_sales"], out[f"{name}_n"] = mean, count
            codes.append(theirs)
            query.append(mine)
        if codes:
            out[ATTRIBUTE_AGREEMENT] = attribute_agreement(np.stack(codes, axis=1), np.stack(query, axis=1), joint)
        return pd.DataFrame(out, index=range(len(frame)))

    def save(self, folder: Path) -> None:
        """Write the fitted pipeline as the files listed in the module docstring."""
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "pipeline.json", plain_fields(self, _STORED_APART))
        np.savez_compressed(folder / "index.npz", **self.index.to_arrays())
        write_table(folder / "history.parquet", self.history)
        self.projection.save(folder)

    @classmethod
    def load(cls, folder: Path) -> FeaturePipeline:
        with np.load(folder / "index.npz", allow_pickle=False) as arrays:
            index = AnalogIndex.from_arrays(dict(arrays)).prepare()
        return cls(**read_json(folder / "pipeline.json"), index=index,
                   history=read_table(folder / "history.parquet"),
                   projection=TimeHonestRidge.load(folder))

    def neighbours(self, frame: pd.DataFrame, embeddings: Embeddings, k: int) -> Neighbours:
        return self.index.search(embeddings.picture, embeddings.copy, Completion.dates(frame)["launch_date"], k,
                                 overrides=overrides_of(frame))

    def search(self, frame: pd.DataFrame, embeddings: Embeddings) -> dict[str, Neighbours]:
        """The one analog search of a forecast (every kind, ``k``, the rows' overrides): what
        ``transform``, ``curve``, ``similar`` and, without overrides, ``novelty`` each searched for."""
        return self.index.search_kinds(embeddings.picture, embeddings.copy, Completion.dates(frame)["launch_date"],
                                       self.k, ANALOG_KINDS, overrides=overrides_of(frame))

    def curve(self, frame: pd.DataFrame, embeddings: Embeddings, nb: Neighbours | None = None) -> np.ndarray | None:
        """Expected share of the total per period, from the analogs' curves (``nb``: the joint
        neighbours already found)."""
        return analog_curve(self.index, self.neighbours(frame, embeddings, self.k) if nb is None else nb)

    def similar(self, frame: pd.DataFrame, embeddings: Embeddings, k: int,
                nb: Neighbours | None = None) -> list[list[dict]]:
        """The k most similar past SKUs of each row, for people to look at (``nb``: found already)."""
        nb = self.neighbours(frame, embeddings, k) if nb is None else nb.head(k)
        # The rows shown, looked up in one go: a pandas row lookup per analog cost ~1-2 ms per shown SKU.
        shown = np.unique(nb.index[nb.index >= 0])
        past = self.history.iloc[shown]
        at = {int(i): j for j, i in enumerate(shown)}
        ids, titles, categories = ([str(v) for v in past[c]] for c in ("sku_id", "title", "category"))
        days = [pd.Timestamp(v).date().isoformat() for v in past["launch_date"]]
        sales = [float(v) for v in past[self.target]]
        return [[{"sku_id": ids[at[i]], "title": titles[at[i]], "category": categories[at[i]],
                  "launch_date": days[at[i]], "similarity": round(float(s), 4), "sales": sales[at[i]]}
                 for i, s in zip(row_index.tolist(), row_sims) if i >= 0]
                for row_index, row_sims in zip(nb.index, nb.similarity)]


ATTRIBUTE_PREFIX = "attr"
ATTRIBUTE_AGREEMENT = "attr_agreement"


def attribute_feature(position: int, column: str) -> str:
    """The feature name of an attribute column: ASCII only (LightGBM refuses some characters in
    names, and a column may be named in Chinese), numbered so that two columns never share one."""
    return f"{ATTRIBUTE_PREFIX}{position}_" + re.sub(r"[^0-9A-Za-z]+", "_", column).strip("_").lower()


def vote_totals(codes: np.ndarray, n_labels: int, nb: Neighbours) -> np.ndarray:
    """(rows, labels) similarity-weighted votes, the numbers of ``category_votes``' group-by sum
    bit for bit: the same float32 weights, added in neighbour order with pandas' compensated
    (Kahan) summation, so ties and near-ties fall the same way as one group-by per row."""
    ok = nb.index >= 0
    weights = np.clip(np.where(ok, nb.similarity, 0), 0, None) + 1e-6  # dtype of the similarities
    totals = np.zeros((len(ok), n_labels), dtype=weights.dtype)
    compensation = np.zeros_like(totals)
    for j in range(ok.shape[1]):
        rows = np.flatnonzero(ok[:, j])
        labels = codes[nb.index[rows, j]]
        y = weights[rows, j] - compensation[rows, labels]
        t = totals[rows, labels] + y
        compensation[rows, labels] = (t - totals[rows, labels]) - y
        totals[rows, labels] = t
    return totals


def overrides_of(frame: pd.DataFrame) -> list[Override | None] | None:
    """The per-row analog overrides a frame carries in its ``analog_override`` column (serving only)."""
    if OVERRIDE not in frame:
        return None
    return [o if isinstance(o, Override) else None for o in frame[OVERRIDE]]


def _head(embeddings: Embeddings, n: int) -> Embeddings:
    return Embeddings(embeddings.picture[:n], embeddings.copy[:n], embeddings.picture_encoder, embeddings.copy_encoder)
