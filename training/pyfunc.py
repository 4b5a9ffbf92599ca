"""The MLflow pyfunc wrapper: a registered model is one self-contained artifact (the bundle)."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import pandas as pd

from features.catalogue import validate_frame
from features.config import get_settings
from training.bundle import ModelBundle

INPUT_COLUMNS = ["sku_id", "launch_date", "category", "title", "description", "image", "cost_price", "list_price", "channel"]


class TrialcastModel(mlflow.pyfunc.PythonModel):
    """``predict`` takes candidate SKU rows (``image`` as raw bytes, or a path under
    ``params['root']``) and returns
    P10/P50/P90 of launch units, the curve and the analogs; serving unwraps ``bundle`` directly."""

    def load_context(self, context) -> None:
        self.bundle = ModelBundle.load(context.artifacts["bundle"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        settings = get_settings()
        frame = model_input.copy()
        images = None
        if "image" in frame and frame["image"].map(lambda v: isinstance(v, (bytes, bytearray))).any():
            images = [bytes(v) if isinstance(v, (bytes, bytearray)) else None for v in frame["image"]]
            frame["image"] = None
        for column in INPUT_COLUMNS:
            if column not in frame:
                frame[column] = None
        frame["sku_id"] = frame["sku_id"].fillna(pd.Series(range(len(frame))).astype(str))
        typed, problems = validate_frame(
            frame, root=Path((params or {}).get("root", ".")), require_target=False, check_images=images is None,
            max_text_chars=settings.max_text_chars,
        )
        if problems:
            raise ValueError("; ".join(str(p) for p in problems))
        results = self.bundle.forecast(typed, settings, images=images)
        return pd.DataFrame(results)
