"""Load the registry's model into a ``Predictor``: the gated champion, or, with no champion, the
latest model its gate refused (``advisory``), or say plainly why there is none.

A champion always wins. An advisory model serves so that a retailer whose history cannot meet the
gate still gets forecasts, honestly: the predictor answers every SKU REVIEW MODEL_ABOVE_GATE
(``features.decision.above_gate``), with the band, the lean, the analogs and the economics.

Through the core library's loader (``features.model``): serving never imports the training code,
and loading writes nothing to the registry."""

from __future__ import annotations

import logging
from typing import Any

from features.config import Settings, tracking_uri
from features.model import ModelFormatError, ModelNotFound, find_version, load_version
from serving.predictor import Predictor

log = logging.getLogger("trialcast.serving")

CHAMPION, ADVISORY = "champion", "advisory"  # the registry's aliases (training.registry)


def no_model(settings: Settings) -> str:
    """Why nothing serves: no version was ever registered in this store (a refused one would serve)."""
    return (f"no trained model in the registry {tracking_uri(settings)} (home {settings.home}): nothing was "
            "trained into this home yet; train on your sales history with `trialcast train CATALOGUE` "
            "(or `make demo` for the sample)")


def _find(settings: Settings) -> tuple[Any, str] | None:
    """The champion's model version, else the advisory one, with its alias; None when neither exists."""
    for alias in (CHAMPION, ADVISORY):
        try:
            return find_version(settings, alias), alias
        except ModelNotFound:
            continue
    return None


def load_champion(settings: Settings) -> tuple[Predictor | None, str]:
    """(predictor, message). The predictor is None when no model can serve; the message then says
    why in one line. Otherwise the message says which version serves, and whether as advisory."""
    from mlflow.exceptions import MlflowException

    try:
        found = _find(settings)
    except MlflowException as error:
        log.warning("the registry cannot be read: %s", error)
        return None, f"the model registry {tracking_uri(settings)} cannot be read: {error}"
    if found is None:
        message = no_model(settings)
        log.warning("%s", message)
        return None, message
    version, alias = found
    try:
        model = load_version(settings, version)
    except ModelFormatError as error:
        log.warning("the %s cannot be read: %s", alias, error)
        return None, f"the {alias} cannot be read: {error}"
    model.check_encoders(settings)
    predictor = Predictor(model, settings, str(version.version))
    if not predictor.advisory:
        return predictor, f"champion version {version.version}"
    reasons = (model.meta.get("gate") or {}).get("reasons") or ()
    refused = "; ".join(reasons) or "refused by its gate"
    how = "advisory" if alias == ADVISORY else "champion promoted past its gate"
    return predictor, (f"{how} version {version.version} ({refused}): every answer is REVIEW until a model "
                       "passes the gate")
