"""What a trained model carries so that serving needs nothing else: the fitted feature pipeline
(reducers, analog index), the boosters, the encoder choice, the gate's numbers and thumbnails of
the past SKUs it shows as analogs."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from features.config import Settings
from features.embed import embed_frame
from features.encoders import get_encoder
from training.train import Fitted

THUMBNAIL_PX = 128


def thumbnail(path: str | None) -> bytes | None:
    if not path:
        return None
    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=80)
        return buffer.getvalue()


@dataclass
class ModelBundle:
    fitted: Fitted
    image_encoder: str  # encoder names from the settings that trained it
    text_encoder: str
    meta: dict[str, Any] = field(default_factory=dict)  # gate numbers, training facts
    thumbnails: dict[str, bytes] = field(default_factory=dict)

    @property
    def categories(self) -> list[str]:
        return self.fitted.pipeline.categories["category"]

    def settings_for_encoding(self, settings: Settings) -> Settings:
        """The serving settings, with the encoders this model was trained on (never others)."""
        return settings.model_copy(update={"image_encoder": self.image_encoder, "text_encoder": self.text_encoder})

    def check_encoders(self, settings: Settings) -> None:
        s = self.settings_for_encoding(settings)
        ids = (get_encoder(s.image_encoder, "image", s.threads).id, get_encoder(s.text_encoder, "text", s.threads).id)
        wanted = (self.fitted.pipeline.picture_encoder, self.fitted.pipeline.copy_encoder)
        if ids != wanted:
            raise RuntimeError(f"installed encoders {ids} differ from the ones the model was trained with {wanted}")

    def forecast(
        self,
        frame: pd.DataFrame,
        settings: Settings,
        *,
        images: list[bytes | None] | None = None,
        cache=None,
        show: int = 5,
    ) -> list[dict[str, Any]]:
        """Forecast validated SKU rows: P10/P50/P90, the sales curve, and the most similar past SKUs."""
        s = self.settings_for_encoding(settings)
        embeddings = embed_frame(frame, s, images=images, cache=cache)
        pipeline = self.fitted.pipeline
        features = pipeline.transform(frame, embeddings)
        quantiles = self.fitted.forecaster.predict(features)
        curve = pipeline.curve(frame, embeddings)
        similar = pipeline.similar(frame, embeddings, show)
        out = []
        for i in range(len(frame)):
            p50 = float(quantiles["p50"].iloc[i])
            analogs = similar[i]
            top1 = analogs[0]["similarity"] if analogs else None
            out.append(
                {
                    "p10": float(quantiles["p10"].iloc[i]),
                    "p50": p50,
                    "p90": float(quantiles["p90"].iloc[i]),
                    "curve": [] if curve is None else [round(p50 * float(x), 2) for x in curve[i]],
                    "analogs": analogs,
                    "top_similarity": top1,
                    "close_analogs": int(np.nan_to_num(features["joint_n_close"].iloc[i])),
                }
            )
        return out

    def save(self, path: Path) -> None:
        import joblib

        joblib.dump(self, path, compress=3)

    @staticmethod
    def load(path: Path) -> ModelBundle:
        import joblib

        return joblib.load(path)
