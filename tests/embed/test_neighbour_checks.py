"""Data checks from embeddings (``sslviz duplicates / outliers / changed``) on real images: two
copies of one picture saved at different JPEG qualities are found as near-duplicates, a noise
image among pictures is the top outlier, and a run's neighbourhoods are compared with random's."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from sslviz.cli import main
from sslviz.core.errors import UserError
from sslviz.data import ingest
from sslviz.maps import neighbour_checks
from sslviz.store import Store

DATASET = "copies"


def _picture(rng: np.random.Generator, side: int = 48) -> Image.Image:
    """A distinct picture: a random colour gradient and two random filled shapes."""
    ramp = np.linspace(0, 1, side)[:, None, None]
    colours = rng.integers(0, 256, (2, 3))
    image = Image.fromarray(
        ((1 - ramp) * colours[0] + ramp * colours[1]).repeat(side, 1).astype(np.uint8)
    )
    draw = ImageDraw.Draw(image)
    for _ in range(2):
        x, y = (int(v) for v in rng.integers(0, side - 16, 2))
        size = int(rng.integers(10, 30))
        draw.ellipse(
            (x, y, x + size, y + size), fill=tuple(int(c) for c in rng.integers(0, 256, 3))
        )
    return image


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


@pytest.fixture
def copies(home: Path, tmp_path: Path) -> Store:
    """A dataset of 24 distinct pictures, one of them saved twice (JPEG 95 and 60: different
    bytes, so ingestion keeps both) and one white-noise image."""
    rng = np.random.default_rng(3)
    folder = tmp_path / "copies"
    folder.mkdir()
    for i in range(24):
        (folder / f"pic_{i:02d}.jpg").write_bytes(_jpeg(_picture(rng), 95))
    (folder / "pic_05_again.jpg").write_bytes(_jpeg(Image.open(folder / "pic_05.jpg"), 60))
    noise = Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    noise.save(folder / "noise.png")
    store = Store.open(home)
    report = ingest(store, [folder], name=DATASET, workers=1)
    assert report.accepted == 26 and report.duplicates == 0
    return store


@pytest.mark.parametrize("source", ["pixels", "random"])
def test_jpeg_copies_are_near_duplicates_in_any_embedding(copies: Store, source: str) -> None:
    emb, graph = neighbour_checks.embedding_graph(copies, DATASET, source)
    report = neighbour_checks.duplicates_report(emb, graph, DATASET)
    assert {(p["a"], p["b"]) for p in report["pairs"]} == {("pic_05.jpg", "pic_05_again.jpg")}
    assert report["groups"] == [{"size": 2, "paths": ["pic_05.jpg", "pic_05_again.jpg"]}]
    assert report["pairs"][0]["cosine"] > 0.95
    # The graph is stored with the embedding and read back as it was.
    again = neighbour_checks.cached_graph(copies, emb)
    assert again is not None and np.array_equal(again.indices, graph.indices)


def test_a_noise_image_among_pictures_is_the_top_outlier_of_the_pixels(copies: Store) -> None:
    # (An untrained network's pooled features of noise land near the mean: which images stand
    # out depends on the embedding, so the page lets you pick it.)
    emb, graph = neighbour_checks.embedding_graph(copies, DATASET, "pixels")
    outliers = neighbour_checks.outliers_report(emb, graph, DATASET, n=3)["outliers"]
    assert outliers[0]["path"] == "noise.png"
    distances = [o["distance"] for o in outliers]
    assert distances == sorted(distances, reverse=True) and distances[0] > distances[1] + 0.05


def test_the_graph_never_counts_an_image_as_its_own_neighbour_even_with_exact_copies() -> None:
    rng = np.random.default_rng(0)
    vectors = np.repeat(rng.normal(size=(4, 8)), 3, axis=0)  # 4 groups of 3 identical rows
    graph = neighbour_checks.graph_of(vectors, [f"v{i}" for i in range(12)], np.arange(12), k=2)
    assert not np.any(graph.indices == np.arange(12)[:, None])
    assert np.allclose(graph.similarity, 1.0, atol=1e-5)
    pairs = neighbour_checks.duplicate_pairs(graph, 0.99)
    groups = neighbour_checks.duplicate_groups(12, pairs)
    assert sorted(map(tuple, groups)) == [(0, 1, 2), (3, 4, 5), (6, 7, 8), (9, 10, 11)]
    assert neighbour_checks.duplicate_of(12, groups).min() == 1


def test_neighbourhood_overlap_is_one_for_the_same_graph_and_drops_when_it_changes() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(60, 16))
    names = [str(i) for i in range(60)]
    same = neighbour_checks.graph_of(vectors, names, np.arange(60))
    other = neighbour_checks.graph_of(rng.normal(size=(60, 16)), names, np.arange(60))
    assert np.all(neighbour_checks.neighbourhood_overlap(same, same) == 1.0)
    changed = neighbour_checks.neighbourhood_overlap(same, other)
    assert changed.mean() < 0.5 and changed.min() >= 0.0
    with pytest.raises(UserError, match="different images"):
        neighbour_checks.neighbourhood_overlap(
            same, neighbour_checks.graph_of(vectors, names[::-1], np.arange(60))
        )


def test_changed_compares_a_run_with_random_at_the_same_layer(home: Path, run_id: int) -> None:
    store = Store.open(home)
    emb, graph, base, base_graph = neighbour_checks.changed_graphs(store, "tiny", run_id)
    assert (base.source, base.layer, base.grid) == ("random", emb.layer, emb.grid)
    report = neighbour_checks.changed_report(emb, graph, base, base_graph, "tiny", n=5)
    assert report["run"] == str(run_id) and len(report["changed"]) == 5
    overlaps = [row["overlap"] for row in report["changed"]]
    assert overlaps == sorted(overlaps) and 0 <= overlaps[0] <= report["mean_overlap"] <= 1
    row = report["changed"][0]
    shared = len(set(row["neighbours"]) & set(row["baseline_neighbours"]))
    assert shared / report["k"] == pytest.approx(row["overlap"])
    with pytest.raises(UserError, match="give a run id"):
        neighbour_checks.changed_graphs(store, "tiny", "random")


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict | str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, json.loads(out.out) if code == 0 and "--json" in args else out.err


def test_cli_duplicates_outliers_changed(
    copies: Store, run_id: int, capsys: pytest.CaptureFixture[str]
) -> None:
    code, found = _cli(capsys, "duplicates", "pixels", "--dataset", DATASET, "--json")
    assert code == 0
    keys = {"source", "dataset", "layer", "grid", "k", "images", "threshold", "pairs", "groups"}
    assert keys <= set(found) and found["threshold"] == neighbour_checks.DEFAULT_THRESHOLD
    assert found["pairs"][0]["a"] == "pic_05.jpg"
    code, strict = _cli(
        capsys, "duplicates", "pixels", "--dataset", DATASET, "--threshold", "1", "--json"
    )
    assert code == 0 and strict["pairs"] == []

    code, ranked = _cli(capsys, "outliers", "pixels", "--dataset", DATASET, "--n", "2", "--json")
    assert code == 0 and ranked["outliers"][0]["path"] == "noise.png"
    assert len(ranked["outliers"]) == 2

    code, changed = _cli(capsys, "changed", str(run_id), "--n", "3", "--json")  # its own dataset
    assert code == 0 and changed["dataset"] == "tiny" and len(changed["changed"]) == 3
    assert changed["baseline"]["source"] == "random"

    code, error = _cli(capsys, "duplicates", "pixels", "--dataset", DATASET, "--threshold", "2")
    assert code == 1 and error.count("\n") == 1 and "[-1, 1]" in error
    code, error = _cli(capsys, "changed", "pixels", "--dataset", DATASET)
    assert code == 1 and "give a run id" in error


@pytest.fixture
def crops_and_copies(home: Path, tmp_path: Path) -> tuple[Store, set[frozenset[str]]]:
    """Two of the demo's photos, 34 overlapping crops each (not copies of each other), and a
    near-copy of two crops: one re-encoded (JPEG 50), one 4% cropped off each side."""
    demo = Path(__file__).resolve().parents[2] / "assets" / "demo"
    folder = tmp_path / "crops"
    for photo in ("astronaut", "cat"):
        shutil.copytree(demo / photo, folder / photo)
    one, two = sorted((folder / "astronaut").glob("*.jpg"))[:2]
    (folder / "astronaut" / "again.jpg").write_bytes(_jpeg(Image.open(one), 50))
    image = Image.open(two)
    w, h = image.size
    (folder / "astronaut" / "trimmed.jpg").write_bytes(
        _jpeg(image.crop((w // 25, h // 25, w - w // 25, h - h // 25)), 90)
    )
    store = Store.open(home)
    ingest(store, [folder], name="crops", workers=1)
    planted = {
        frozenset((f"astronaut/{one.name}", "astronaut/again.jpg")),
        frozenset((f"astronaut/{two.name}", "astronaut/trimmed.jpg")),
    }
    return store, planted


def test_overlapping_crops_of_a_photo_are_not_near_duplicates(crops_and_copies) -> None:
    store, planted = crops_and_copies
    emb, graph = neighbour_checks.embedding_graph(store, "crops", "pixels")
    report = neighbour_checks.duplicates_report(emb, graph, "crops")
    found = {frozenset((p["a"], p["b"])) for p in report["pairs"]}
    made = {"astronaut/again.jpg", "astronaut/trimmed.jpg"}
    assert not [pair for pair in found if not pair & made]  # no two crops of one photo
    again = next(pair for pair in planted if "astronaut/again.jpg" in pair)
    assert again in found  # the re-encoded copy
