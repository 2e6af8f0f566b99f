"""Data checks at scale: time and peak memory of ``sslviz scores`` / ``duplicates`` / ``outliers``
on N generated images, next to one embedding pass of the same images (the ratio is what to read:
"a duplicate check costs x embeddings"), and near-duplicate precision and recall on planted
near-copies.

    python benchmarks/data_checks.py                # 10,000 images (≈ 10 min on 2 busy cores)
    python benchmarks/data_checks.py --images 2000 --thresholds 0.9 0.95 0.98

The data: N distinct generated pictures (a random two-colour gradient with three random shapes,
64 px), of which ``--copies`` (default 5%) get a near-copy: the same pixels saved again as JPEG at
another quality (95 vs 60), half of them also shifted by 2 px and brightened by 4%. Identical
bytes would be dropped at ingest; these are the copies a researcher actually has. One image in
200 is an unrelated outlier (white noise). A short rotation run (``--epochs``, a fixed amount of
training, not a time budget, so quality does not depend on the machine's load) is the trained
source.

Every command runs as a separate ``python -m sslviz`` process (cold, as a user runs it); its peak
resident memory is that child's ``ru_maxrss`` (stdlib ``resource``), its time the wall clock.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIDE = 64


def picture(rng: np.random.Generator) -> Image.Image:
    """A distinct picture: a two-colour gradient and three random filled shapes."""
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0, 1, SIDE)[:, None, None]
    angle = rng.uniform(0, np.pi)
    ramp = (np.cos(angle) * t + np.sin(angle) * t.transpose(1, 0, 2)) / 2 + 0.5
    image = Image.fromarray(((1 - ramp) * top + ramp * bottom).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x0, y0 = rng.integers(0, SIDE - 12, 2)
        x1, y1 = x0 + rng.integers(8, 40), y0 + rng.integers(8, 40)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape(
            (int(x0), int(y0), int(x1), int(y1)),
            fill=tuple(int(c) for c in rng.integers(0, 256, 3)),
        )
    return image


def jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def write_dataset(folder: Path, n: int, copy_fraction: float, seed: int = 0) -> set[frozenset]:
    """n images (originals + copies + outliers) in ``folder``; returns the planted copy pairs."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n_copies = int(n * copy_fraction)
    n_outliers = max(1, n // 200)
    n_originals = n - n_copies - n_outliers
    planted = set()
    for i in range(n_originals):
        image = picture(rng)
        (folder / f"img_{i:05d}.jpg").write_bytes(jpeg(image, 95))
        if i < n_copies:
            copy = image
            if i % 2:  # shifted and brighter: a crop-and-edit, not only a re-encode
                copy = Image.fromarray(
                    np.clip(np.roll(np.asarray(image), 2, axis=1) * 1.04, 0, 255).astype(np.uint8)
                )
            (folder / f"copy_{i:05d}.jpg").write_bytes(jpeg(copy, 60))
            planted.add(frozenset((f"img_{i:05d}.jpg", f"copy_{i:05d}.jpg")))
    for i in range(n_outliers):
        noise = rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
        (folder / f"noise_{i:03d}.png").write_bytes(_png(noise))
    return planted


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def sslviz(home: Path, *args: str) -> tuple[dict, float, float]:
    """Run ``python -m sslviz ARGS --json`` in a child under ``/usr/bin/time``: (its JSON,
    seconds, the child's peak resident memory in MB)."""
    env = {**os.environ, "SSLVIZ_HOME": str(home)}
    with tempfile.NamedTemporaryFile(suffix=".rss") as rss:
        command = ["/usr/bin/time", "-f", "%M", "-o", rss.name, sys.executable, "-m", "sslviz"]
        started = time.perf_counter()
        done = subprocess.run(
            [*command, *args, "--json"], env=env, capture_output=True, text=True, check=False
        )
        seconds = time.perf_counter() - started
        peak = int(Path(rss.name).read_text().split()[-1]) / 1024  # KiB -> MiB
    if done.returncode:
        raise SystemExit(f"sslviz {' '.join(args)} failed: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout), seconds, peak


def precision_recall(pairs: list[dict], planted: set[frozenset]) -> tuple[float, float]:
    found = {frozenset((p["a"], p["b"])) for p in pairs}
    hits = len(found & planted)
    precision = hits / len(found) if found else float("nan")
    return precision, hits / len(planted) if planted else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--copies", type=float, default=0.05, help="fraction with a near-copy")
    parser.add_argument("--epochs", type=int, default=1, help="rotation training epochs")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.9, 0.95, 0.98])
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="sslviz-checks-"))
    home, source = work / "home", work / "images"
    planted = write_dataset(source, args.images, args.copies)
    print(
        f"# {args.images:,} images, {len(planted)} planted near-copy pairs; load: "
        f"{os.getloadavg()[0]:.1f} (1-min average) on {os.cpu_count()} cores"
    )
    sslviz(home, "ingest", str(source), "--name", "bench")
    trained, seconds, _ = sslviz(
        home,
        "train",
        "--dataset",
        "bench",
        "--task",
        "rotation",
        "--image-size",
        "32",
        "--epochs",
        str(args.epochs),
        "--batch-size",
        "64",
        "--device",
        "cpu",
    )
    run = str(trained["run"])
    print(f"# rotation run {run}: {trained['status']} in {seconds:.0f} s")

    rows = []
    _, embed_s, embed_mb = sslviz(
        home, "embed", run, "--dataset", "bench", "--out", str(work / "e.npy")
    )
    rows.append(("embed (one pass, reference)", embed_s, embed_mb))
    scored, s, mb = sslviz(home, "scores", run, "--dataset", "bench", "--n", "0")
    rows.append((f"scores (rotation, {scored['images']:,} images)", s, mb))
    for src in (run, "random", "pixels"):
        if src != run:
            _, s, mb = sslviz(
                home, "embed", src, "--dataset", "bench", "--out", str(work / "e.npy")
            )
        report, s, mb = sslviz(home, "duplicates", src, "--dataset", "bench")
        rows.append((f"duplicates {src} (first: kNN graph)", s, mb))
        _, s, mb = sslviz(home, "outliers", src, "--dataset", "bench")
        rows.append((f"outliers {src} (graph cached)", s, mb))
    print("\n| step | seconds | × one embed pass | peak RSS (MB) |\n|---|---|---|---|")
    for name, s, mb in rows:
        print(f"| {name} | {s:.1f} | {s / embed_s:.2f} | {mb:.0f} |")

    print("\n| source | threshold | pairs found | precision | recall |\n|---|---|---|---|---|")
    for src in (run, "random", "pixels"):
        for t in args.thresholds:
            report, _, _ = sslviz(
                home, "duplicates", src, "--dataset", "bench", "--threshold", str(t)
            )
            p, r = precision_recall(report["pairs"], planted)
            print(
                f"| {src if src != run else f'run {run}'} | {t} | {len(report['pairs'])} | {p:.3f} | {r:.3f} |"
            )
    outliers, _, _ = sslviz(
        home, "outliers", "pixels", "--dataset", "bench", "--n", str(max(1, args.images // 200))
    )
    hit = sum(o["path"].startswith("noise_") for o in outliers["outliers"])
    print(
        f"\n# outliers (pixels): {hit} of the {len(outliers['outliers'])} top-ranked are the planted noise images"
    )


if __name__ == "__main__":
    main()
