"""Load the registry's gated champion into a ``Predictor``, or say plainly why there is none."""

from __future__ import annotations

import logging

from features.config import Settings
from serving.predictor import Predictor

log = logging.getLogger("trialcast.serving")

NO_CHAMPION = "no gated champion model: train one with `trialcast train CATALOGUE` (or `make demo`)"


def load_champion(settings: Settings) -> tuple[Predictor | None, str]:
    """(predictor, message). The predictor is None when there is no usable champion."""
    from mlflow.exceptions import MlflowException

    from training.jobs import load_bundle

    try:
        bundle, version = load_bundle(settings)
    except MlflowException as error:
        log.warning("%s (%s)", NO_CHAMPION, error)
        return None, NO_CHAMPION
    if version.tags.get("gate.passed") != "true":
        return None, f"the champion (version {version.version}) did not pass the gate; {NO_CHAMPION}"
    bundle.check_encoders(settings)
    return Predictor(bundle, settings, str(version.version)), f"champion version {version.version}"
