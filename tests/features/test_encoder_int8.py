"""The int8 picture encoder (issue 17, item 4): an opt-in variant of the ONNX export with int8
weights, never the default, with an id of its own so that vectors and models never mix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from features import encoders
from features.config import Settings
from features.encoders import EfficientNetLite0Onnx, EfficientNetLite0OnnxInt8, get_encoder


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="module")
def pair(state):
    return get_encoder("efficientnet-lite0-onnx", "image", 1, state), get_encoder(
        "efficientnet-lite0-onnx-int8", "image", 1, state)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    from PIL import Image

    from features.sample import write_sample_catalogue

    folder = write_sample_catalogue(tmp_path_factory.mktemp("sample"), n=24, candidates=0).parent
    return [Image.open(p) for p in sorted(folder.rglob("*.png"))[:24]]


def test_int8_is_opt_in_with_an_id_of_its_own(pair) -> None:
    fp32, int8 = pair
    assert Settings().image_encoder == "efficientnet-lite0-onnx"  # never the default
    assert isinstance(int8, EfficientNetLite0OnnxInt8) and int8.dim == fp32.dim == 1280
    assert int8.id == fp32.id.removesuffix(":fp32") + f":{encoders.INT8_RECIPE}" != fp32.id


def test_int8_quantises_the_export_once_and_stays_close(pair, pictures, state, monkeypatch) -> None:
    import onnx

    fp32, int8 = pair
    reference = fp32.encode(pictures)
    ours = int8.encode(pictures)
    assert int8.path.is_file() and int8.path != fp32.path and int8.path.parent == state / "encoders"
    assert not list(int8.path.parent.glob("*.tmp"))  # written atomically
    model = onnx.load(str(int8.path))
    assert {"QuantizeLinear", "DequantizeLinear"} <= {node.op_type for node in model.graph.node}
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = (ours * reference).sum(axis=1)
    assert not np.array_equal(ours, reference)  # another encoder, not a copy of fp32
    assert cosines.min() >= 0.9, cosines.min()  # close, but not the fp32 vectors: hence opt-in
    np.testing.assert_array_equal(ours, int8.encode(pictures))  # deterministic
    # a second process finds the quantised file: no re-export, no re-quantisation
    stamp = int8.path.stat().st_mtime_ns
    monkeypatch.setattr(encoders, "_lite0_torch", lambda threads: pytest.fail("re-exported"))
    again = EfficientNetLite0OnnxInt8(1, state)
    np.testing.assert_array_equal(again.encode(pictures[:3]), ours[:3])
    assert int8.path.stat().st_mtime_ns == stamp


def test_a_model_trained_on_one_variant_refuses_the_other(pair, state) -> None:
    from features.model import Model

    fp32, int8 = pair

    class Pipeline:  # only the encoder ids a trained pipeline records
        picture_encoder = int8.id
        copy_encoder = get_encoder("use-m3", "text", 1).id

    model = Model(Pipeline(), None, "efficientnet-lite0-onnx-int8", "use-m3")  # type: ignore[arg-type]
    settings = Settings(home=state.parent / "home-int8", image_encoder="efficientnet-lite0-onnx")
    model.check_encoders(settings)  # serving encodes with the model's own variant, whatever the settings say
    assert model.settings_for_encoding(settings).image_encoder == "efficientnet-lite0-onnx-int8"
    Pipeline.picture_encoder = fp32.id  # a model whose recorded id is the other variant's
    with pytest.raises(RuntimeError, match="differ from the ones the model was trained with"):
        model.check_encoders(settings)
