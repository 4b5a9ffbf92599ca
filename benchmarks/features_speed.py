"""How fast is the feature path, and how much does it cost over the bare encoders?

Prints one table: bare encoder throughput (EfficientNet-Lite0 on pre-decoded pictures, USE-m3 on
copy), then the cached embedding step (read + decode + hash + cache + encode) cold and warm, then the
full feature path (embed_frame + FeaturePipeline.transform) cold and warm, each with its ratio to the
bare encoders.

    python benchmarks/features_speed.py                      # synthetic sample catalogue, 200 SKUs
    python benchmarks/features_speed.py --catalogue data/catalogue.parquet --n 500
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

for _name, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "true",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_name, _value)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from features.assemble import FeaturePipeline
from features.cache import EmbeddingCache
from features.catalogue import Catalogue, load_catalogue
from features.config import Settings
from features.embed import _embed, _local, embed_frame
from features.encoders import copy_text, get_encoder
from features.images import decode_image


# ---------------------------------------------------------------- a catalogue to measure on
def draw_catalogue(folder: Path, n: int) -> Path:
    """Fallback when features.sample is not available: n PIL-drawn product shots and copy."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    words = [
        ("tshirt", "纯棉T恤"),
        ("cup", "保温杯"),
        ("shoes", "运动鞋"),
        ("bag", "帆布包"),
        ("dress", "连衣裙"),
    ]
    colours = {
        "白色": (245, 245, 245),
        "黑色": (20, 20, 20),
        "红色": (210, 30, 40),
        "蓝色": (30, 60, 200),
        "绿色": (40, 160, 60),
        "黄色": (240, 200, 30),
    }
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        category, noun = words[i % len(words)]
        colour_name, rgb = list(colours.items())[rng.integers(len(colours))]
        image = Image.new("RGB", (256, 256), (255, 255, 255))
        d = ImageDraw.Draw(image)
        x0, y0 = rng.integers(20, 70, size=2)
        box = (int(x0), int(y0), int(x0) + 150, int(y0) + 150)
        (d.ellipse if i % 2 else d.rectangle)(box, fill=rgb, outline=(0, 0, 0))
        d.text((8, 8), f"{i:05d}", fill=(0, 0, 0))
        image.save(folder / "img" / f"{i:05d}.png")
        sales = rng.poisson(20, size=7)
        rows.append(
            {
                "sku_id": f"S{i:05d}",
                "launch_date": (pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(i)))
                .date()
                .isoformat(),
                "category": category,
                "title": f"{colour_name}{noun} {i}",
                "description": f"{colour_name} 新款 {noun} 第{i}号",
                "image": f"img/{i:05d}.png",
                "cost_price": f"{rng.uniform(10, 60):.1f}",
                "list_price": f"{rng.uniform(70, 150):.0f}",
                "channel": "app",
                "sales_7d": str(int(sales.sum())),
                **{f"sales_d{d + 1}": str(int(v)) for d, v in enumerate(sales)},
            }
        )
    path = folder / "catalogue.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def default_catalogue(folder: Path, n: int) -> tuple[Path, str]:
    try:
        from features.sample import write_sample_catalogue
    except ImportError:
        return draw_catalogue(folder, n), f"{n} PIL-drawn SKUs"
    return write_sample_catalogue(folder, n=n, seed=7, candidates=1), f"synthetic sample, {n} SKUs"


# ---------------------------------------------------------------- timing
def timed(work: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def in_batches(encode: Callable[[list], np.ndarray], items: list, batch: int) -> np.ndarray:
    return np.concatenate([encode(items[i : i + batch]) for i in range(0, len(items), batch)])


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="trialcast-bench-"))
    try:
        run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--catalogue", type=Path, help="a catalogue with sales (default: generate one)"
    )
    parser.add_argument("--n", type=int, default=200, help="SKUs to measure on (default 200)")
    parser.add_argument("--threads", type=int, help="encoder threads (default: settings)")
    parser.add_argument("--batch-size", type=int, help="picture batch size (default: settings)")
    args = parser.parse_args()

    overrides = {
        k: v for k, v in {"threads": args.threads, "batch_size": args.batch_size}.items() if v
    }
    settings = Settings(home=work / "home", **overrides)

    if args.catalogue:
        source, label = args.catalogue, str(args.catalogue)
    else:
        seconds, (source, label) = timed(lambda: default_catalogue(work / "catalogue", args.n))
        print(f"generated {label} in {seconds:.1f}s", file=sys.stderr)
    full = load_catalogue(source)
    frame = full.frame.sort_values("launch_date", kind="stable").head(args.n).reset_index(drop=True)
    catalogue = Catalogue(frame=frame, root=full.root, spec=full.spec)
    n = len(frame)

    load_picture, picture_encoder = timed(
        lambda: get_encoder(settings.image_encoder, "image", settings.threads)
    )
    load_copy, copy_encoder = timed(
        lambda: get_encoder(settings.text_encoder, "text", settings.threads)
    )
    picture_bytes = [Path(p).read_bytes() for p in frame["image_path"]]

    def decode(data: bytes):
        return decode_image(
            data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels
        )

    decoded = [decode(b) for b in picture_bytes]
    texts = [copy_text(t, d) for t, d in zip(frame["title"], frame["description"])]
    picture_encoder.encode(decoded[:2])  # warm up lazy initialisation outside the clock
    copy_encoder.encode(texts[:2])

    rows: list[tuple[str, float, str, float | None]] = []  # (stage, seconds, unit, ratio to bare)

    # bare encoders
    t_bare_picture, _ = timed(
        lambda: in_batches(picture_encoder.encode, decoded, settings.batch_size)
    )
    t_bare_copy, _ = timed(lambda: in_batches(copy_encoder.encode, texts, 256))
    rows.append(
        (f"bare {settings.image_encoder} forward (pre-decoded)", t_bare_picture, "pictures", 1.0)
    )
    rows.append((f"bare {settings.text_encoder} encode", t_bare_copy, "copies", 1.0))

    # the cached embedding step, one modality at a time (what embed_frame does for each)
    cache = EmbeddingCache(work / "per-kind.sqlite")

    def pictures_through_cache():
        payloads = [Path(p).read_bytes() for p in frame["image_path"]]
        return _embed(
            payloads, picture_encoder, cache, _local(picture_encoder, decode, settings.batch_size), False, "pictures"
        )

    def copies_through_cache():
        return _embed(texts, copy_encoder, cache, _local(copy_encoder, lambda t: t, 256), False, "copy")

    for state in ("cold", "warm"):
        t, (_, computed) = timed(pictures_through_cache)
        rows.append(
            (
                f"embed pictures {state} (read+decode+cache+encode, {computed} computed)",
                t,
                "pictures",
                t_bare_picture / t,
            )
        )
    for state in ("cold", "warm"):
        t, (_, computed) = timed(copies_through_cache)
        rows.append(
            (
                f"embed copies {state} (hash+cache+encode, {computed} computed)",
                t,
                "copies",
                t_bare_copy / t,
            )
        )

    # embed_frame as the product calls it: both kinds
    t_bare_sku = t_bare_picture + t_bare_copy
    cache = EmbeddingCache(work / "frame.sqlite")
    for state in ("cold", "warm"):
        t, embeddings = timed(lambda: embed_frame(frame, settings, cache=cache))
        rows.append(
            (f"embed_frame {state} ({embeddings.computed} computed)", t, "SKUs", t_bare_sku / t)
        )

    # the full feature path: embed + transform through a pipeline fitted on the same SKUs
    t_fit, pipeline = timed(lambda: FeaturePipeline.fit(catalogue, embeddings, settings))
    cache = EmbeddingCache(work / "path.sqlite")
    for state in ("cold", "warm"):

        def feature_path():
            e = embed_frame(frame, settings, cache=cache)
            return pipeline.transform(frame, e)

        t, features = timed(feature_path)
        rows.append((f"feature path {state} (embed_frame + transform)", t, "SKUs", t_bare_sku / t))
    t_transform, _ = timed(lambda: pipeline.transform(frame, embeddings))
    rows.append(("FeaturePipeline.transform alone", t_transform, "SKUs", None))

    print(
        f"catalogue: {label}; n = {n} SKUs; threads = {settings.threads}; picture batch = {settings.batch_size}"
    )
    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} at the end (other work skews timings)"
    )
    print(
        f"encoder load: {settings.image_encoder} {load_picture:.1f}s, {settings.text_encoder} {load_copy:.1f}s; "
        f"pipeline fit {t_fit:.2f}s ({features.shape[1]} features)"
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'stage':<{width}}  {'seconds':>8}  {'items/s':>10}  {'x bare':>7}")
    print("-" * (width + 31))
    for stage, seconds, unit, ratio in rows:
        rate = f"{n / seconds:,.1f}"
        shown = f"{ratio:.2f}" if ratio is not None else ""
        print(f"{stage:<{width}}  {seconds:8.2f}  {rate:>10}  {shown:>7}   {unit}")
    print(
        "x bare: throughput relative to the bare encoder(s) for the same items; for SKUs the bare cost is"
    )
    print(
        "        one picture forward + one copy encode per SKU. Warm = every vector already cached."
    )


if __name__ == "__main__":
    main()
