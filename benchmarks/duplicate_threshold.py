"""The near-duplicate check's default threshold, measured where it matters: the bundled demo
(different crops of six photos, which are NOT copies of each other) with planted near-copies
(which are).

    python benchmarks/duplicate_threshold.py            # ≈ 3 min on 2 busy cores

A near-copy is what a researcher really has twice: one image re-encoded (JPEG quality 50),
resized (to 70%), cropped a little (4% off each side) or shifted by 2 px and brightened by 4%
(one of each, in turn) — 36 of them, 4 per photo. For each source (pixels, the untrained network,
a short rotation run) and threshold, it prints the planted pairs found (recall) and how many of
the 306 demo crops are flagged as a near-duplicate of another crop (false flags: the Explorer
flagged 90 of 306 at the old default 0.95, while the Datasets page rightly said 0 duplicates),
under the rule of ``sslviz.maps.neighbour_checks.duplicate_pairs`` (threshold and distance gap).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo"
EDITS = ("jpeg", "resize", "crop", "shift")


def near_copy(image: Image.Image, edit: str) -> Image.Image:
    """One edit that leaves the picture the same to a person."""
    w, h = image.size
    if edit == "resize":
        return image.resize((int(w * 0.7), int(h * 0.7)), Image.Resampling.BICUBIC)
    if edit == "crop":
        dx, dy = max(1, int(w * 0.04)), max(1, int(h * 0.04))
        return image.crop((dx, dy, w - dx, h - dy))
    if edit == "shift":
        shifted = Image.new("RGB", (w, h))
        shifted.paste(image, (2, 0))
        return shifted.point(lambda v: min(255, int(v * 1.04)))
    return image  # "jpeg": the re-encode below is the edit


def write_dataset(folder: Path, per_photo: int = 4) -> set[frozenset[str]]:
    """The demo's crops plus ``per_photo`` near-copies of each photo's first crops."""
    shutil.copytree(DEMO, folder)
    planted: set[frozenset[str]] = set()
    for n, photo in enumerate(sorted(p for p in folder.iterdir() if p.is_dir())):
        for i, path in enumerate(sorted(photo.glob("*.jpg"))[:per_photo]):
            edit = EDITS[(n + i) % len(EDITS)]
            copy = near_copy(Image.open(path).convert("RGB"), edit)
            out = io.BytesIO()
            copy.save(out, format="JPEG", quality=50 if edit == "jpeg" else 90)
            name = f"{photo.name}/copy_{edit}_{path.name}"
            (folder / name).write_bytes(out.getvalue())
            planted.add(frozenset((f"{photo.name}/{path.name}", name)))
    return planted


def edited(pair: frozenset[str], edit: str) -> bool:
    return any(f"/copy_{edit}_" in path for path in pair)


def sslviz(home: Path, *args: str) -> dict:
    env = {**os.environ, "SSLVIZ_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "sslviz", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"sslviz {' '.join(args)} failed: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thresholds", type=float, nargs="+",
                        default=[0.9, 0.95, 0.97, 0.98, 0.985, 0.99, 0.995])  # fmt: skip
    parser.add_argument("--time-budget", type=float, default=60.0, help="rotation run, seconds")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sslviz-dupes-"))
    home, images = work / "home", work / "demo-copies"
    planted = write_dataset(images)
    copies = {p for pair in planted for p in pair if "/copy_" in p}
    sslviz(home, "ingest", str(images), "--name", "dc")
    run = sslviz(home, "train", "--dataset", "dc", "--task", "rotation",
                 "--time-budget", str(args.time_budget))["run"]  # fmt: skip
    print(f"# demo crops + {len(planted)} planted near-copies; rotation run {run} "
          f"({args.time_budget:.0f} s); load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(
        f"\n| source | threshold | planted pairs found | {' | '.join(EDITS)} | demo crops flagged |"
    )
    print("|---|---|---|" + "---|" * len(EDITS) + "---|")
    for source in ("pixels", "random", str(run)):
        for t in args.thresholds:
            report = sslviz(home, "duplicates", source, "--dataset", "dc", "--threshold", str(t))
            found = {frozenset((p["a"], p["b"])) for p in report["pairs"]}
            crops = {x for p in report["pairs"] for x in (p["a"], p["b"])
                     if p["a"] not in copies and p["b"] not in copies}  # fmt: skip
            name = source if not source.isdigit() else f"rotation #{source}"
            kinds = " | ".join(  # found / planted of each edit
                f"{sum(1 for q in found & planted if edited(q, e))}/"
                f"{sum(1 for q in planted if edited(q, e))}"
                for e in EDITS
            )
            print(
                f"| {name} | {t} | {len(found & planted)}/{len(planted)} | {kinds} | {len(crops)} |"
            )


if __name__ == "__main__":
    main()
