"""The MLflow pyfunc wrapper: a registered model is one self-contained artifact (the bundle)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import mlflow.pyfunc
import pandas as pd

from features.catalogue import DEFAULT_SPEC, Problem, validate_frame
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
        for column in INPUT_COLUMNS:
            if column not in frame:
                frame[column] = None
        # Pictures come as raw bytes in ``image`` or as paths under ``params['root']``, row by row.
        given = [bytes(v) if isinstance(v, (bytes, bytearray, memoryview)) else None for v in frame["image"]]
        frame["image"] = [None if b is not None else v for v, b in zip(frame["image"], given)]
        frame["sku_id"] = frame["sku_id"].fillna(pd.Series(range(len(frame))).astype(str))
        spec = replace(DEFAULT_SPEC, require_image=not any(b is not None for b in given))
        typed, problems = validate_frame(
            frame, root=Path((params or {}).get("root", ".")), require_target=False, spec=spec,
            max_text_chars=settings.max_text_chars, max_image_bytes=settings.max_image_bytes,
            max_image_pixels=settings.max_image_pixels,
        )
        paths = [p if isinstance(p, str) and p else None for p in typed["image_path"]] if len(typed) else []
        if not spec.require_image:  # a row with neither bytes nor a path has no picture: still an error
            problems += [Problem(i + 1, "image", "is missing") for i, (b, p) in enumerate(zip(given, paths))
                         if b is None and p is None]
        if problems:
            raise ValueError("; ".join(str(p) for p in problems))
        images = [b if b is not None else Path(p).read_bytes() for b, p in zip(given, paths)]
        results = self.bundle.forecast(typed, settings, images=images)
        return pd.DataFrame(results)
