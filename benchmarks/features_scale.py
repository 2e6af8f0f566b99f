"""``sslviz features`` at scale: one pass per layer over 10,000 generated 32 px images, its wall
and CPU time and peak memory, next to an embedding pass over the same images at the same layer
(the same forward work, pooled instead of max'd) measured in the same process.

Each layer runs in its own process (peak RSS is that layer's alone, from getrusage). The source
is ``random`` (the default small-cnn, untrained: a trained run costs the same). Images are written
straight into a dataset's decoded cache (``embed_project.make_dataset``; ingest has its own
benchmark). Then the cached read and the ``--json`` answer (16 channels x 9 images) are timed.

    python benchmarks/features_scale.py [--images 10000] [--layers block1 block2 block3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from embed_project import make_dataset  # noqa: E402


def child(home: Path, layer: str) -> dict:
    from sslviz.api import channel_features
    from sslviz.maps.embed import embed
    from sslviz.store import Store

    store = Store.open(home)
    channel_features(store, "gen", "random", layer="block1")  # imports, model, first touch
    store_dir = home / "datasets"
    for old in store_dir.rglob("features/random/block1-*.npz"):
        old.unlink()  # the warm-up's index: block1 must be measured like the others
    t0, c0 = time.perf_counter(), time.process_time()
    index = channel_features(store, "gen", "random", layer=layer)
    t1, c1 = time.perf_counter(), time.process_time()
    again = channel_features(store, "gen", "random", layer=layer)
    t2 = time.perf_counter()
    answer = again.to_json(channels=16, top=9, run="random")
    t3 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    e0, ec0 = time.perf_counter(), time.process_time()
    embed(store, "gen", "random", layer=layer, grid=1)
    e1, ec1 = time.perf_counter(), time.process_time()
    assert len(answer["channels"]) == 16 and index.seconds > 0
    return {
        "pass_s": t1 - t0,
        "pass_cpu_s": c1 - c0,
        "cached_s": t2 - t1,
        "json_s": t3 - t2,
        "embed_s": e1 - e0,
        "embed_cpu_s": ec1 - ec0,
        "channels": index.channels,
        "peak_rss_mb": rss,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--layers", nargs="+", default=["block1", "block2", "block3"])
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--layer", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.layer)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        make_dataset(home, args.images)
        print(
            f"{args.images:,} images at 32 px, random small-cnn, load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        print(
            f"{'layer':>7} {'ch':>4} {'pass s':>7} {'cpu s':>6} {'embed s':>8} {'pass/embed':>10} "
            f"{'cached s':>8} {'json s':>7} {'peak RSS MB':>11}"
        )
        for layer in args.layers:
            env = {**os.environ, "SSLVIZ_HOME": str(home)}
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(home), "--layer", layer],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            if out.returncode:
                raise SystemExit(out.stderr[-3000:])
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{layer:>7} {r['channels']:>4} {r['pass_s']:>7.2f} {r['pass_cpu_s']:>6.1f} "
                f"{r['embed_s']:>8.2f} {r['pass_s'] / r['embed_s']:>10.2f} {r['cached_s']:>8.3f} "
                f"{r['json_s']:>7.3f} {r['peak_rss_mb']:>11.0f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
