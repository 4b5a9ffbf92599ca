"""Load the registry's gated champion into a ``Predictor``, or say plainly why there is none.

Through the core library's loader (``features.model``): serving never imports the training code,
and loading writes nothing to the registry."""

from __future__ import annotations

import logging

from features.config import Settings
from features.model import ModelFormatError, ModelNotFound, find_version, load_version
from serving.predictor import Predictor

log = logging.getLogger("trialcast.serving")

NO_CHAMPION = "no gated champion model: train one with `trialcast train CATALOGUE` (or `make demo`)"


def load_champion(settings: Settings) -> tuple[Predictor | None, str]:
    """(predictor, message). The predictor is None when there is no usable champion; the message
    then says why in one line, and what to run."""
    from mlflow.exceptions import MlflowException

    try:
        version = find_version(settings)
    except (ModelNotFound, MlflowException) as error:
        log.warning("%s (%s)", NO_CHAMPION, error)
        return None, NO_CHAMPION
    if version.tags.get("gate.passed") != "true":
        return None, f"the champion (version {version.version}) did not pass the gate; {NO_CHAMPION}"
    try:
        model = load_version(settings, version)
    except ModelFormatError as error:
        log.warning("the champion cannot be read: %s", error)
        return None, f"the champion cannot be read: {error}"
    model.check_encoders(settings)
    return Predictor(model, settings, str(version.version)), f"champion version {version.version}"
