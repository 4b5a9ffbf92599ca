"""The MLflow pyfunc model, logged as code ("models from code"): MLflow copies this file into every
registered model and runs it when ``mlflow.pyfunc.load_model`` loads one.

It lives in training/ because training is what logs it; nothing imports it as ``training.pyfunc``
(MLflow executes the copy in the model by path), and it imports only ``features``, MLflow and
third-party packages, so a registered model loads and predicts without the training code. What it
reads is the plain-file model of ``features.model`` (artifact ``model``), not a pickle.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

from features.catalogue import DEFAULT_SPEC, Problem, validate_frame
from features.config import get_settings
from features.model import ARTIFACT, Model

INPUT_COLUMNS = ["sku_id", "launch_date", "category", "title", "description", "image", "cost_price", "list_price", "channel"]


class TrialcastModel(PythonModel):
    """``predict`` takes candidate SKU rows (``image`` as raw bytes, or a path under
    ``params['root']``) and returns P10/P50/P90 of launch units, the curve and the analogs."""

    def load_context(self, context) -> None:
        self.model = Model.load(Path(context.artifacts[ARTIFACT]))

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
        # What a SKU may lack is what the model's history lacked (serving.predictor.Predictor says why).
        absent = self.model.pipeline.absent_share
        picture_optional = absent.get("image", 0.0) > 0
        spec = replace(DEFAULT_SPEC, require_image=not picture_optional and not any(b is not None for b in given),
                       require_cost_price=not absent.get("cost_price", 0.0) > 0,
                       attributes=tuple(self.model.pipeline.attributes))
        typed, problems = validate_frame(
            frame, root=Path((params or {}).get("root", ".")), require_target=False, spec=spec,
            max_text_chars=settings.max_text_chars, max_image_bytes=settings.max_image_bytes,
            max_image_pixels=settings.max_image_pixels,
        )
        paths = [p if isinstance(p, str) and p else None for p in typed["image_path"]] if len(typed) else []
        if not spec.require_image and not picture_optional:  # neither bytes nor a path: no picture, an error
            problems += [Problem(i + 1, "image", "is missing") for i, (b, p) in enumerate(zip(given, paths))
                         if b is None and p is None]
        if problems:
            raise ValueError("; ".join(str(p) for p in problems))
        images = [b if b is not None else Path(p).read_bytes() if p else None for b, p in zip(given, paths)]
        results = self.model.forecast(typed, settings, images=images)
        return pd.DataFrame(results)


set_model(TrialcastModel())
