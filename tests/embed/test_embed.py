"""Embeddings per source: shapes, row order, determinism, the workspace cache and resuming."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from sslviz.core.errors import UserError
from sslviz.core.liveness import Cancelled
from sslviz.maps import embed as embed_module
from sslviz.maps.embed import (
    available_layers,
    cached_embeddings,
    default_layer,
    embed,
)
from sslviz.models.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from sslviz.store import Store

SOURCES = ["random", "pixels", "run"]


def _source(name: str, run_id: int) -> str | int:
    return run_id if name == "run" else name


@pytest.mark.parametrize("name", SOURCES)
def test_shapes_order_and_determinism(store: Store, run_id: int, name: str) -> None:
    source = _source(name, run_id)
    emb = embed(store, "tiny", source)
    images = store.datasets.images(store.datasets.get_by_name("tiny").id)
    layer, grid = default_layer(store, source)
    assert (emb.layer, emb.grid) == (layer, grid)
    assert emb.vectors.shape == (len(images), emb.dim) and emb.vectors.dtype == np.float32
    assert emb.paths == [i.path for i in images] == sorted(emb.paths)
    assert emb.image_ids.tolist() == [i.id for i in images]
    assert np.isfinite(emb.vectors).all()
    assert emb.source == str(source) and layer in available_layers(store, source)
    # computed again from scratch: the same numbers
    first = np.array(emb.vectors)
    shutil.rmtree(emb.file.parent)
    again = embed(store, "tiny", source)
    np.testing.assert_allclose(np.asarray(again.vectors), first, rtol=1e-5, atol=1e-6)


def test_every_layer_and_grid_of_a_run(store: Store, run_id: int) -> None:
    for layer in available_layers(store, run_id):
        for grid in (1, 2):
            emb = embed(store, "tiny", run_id, layer=layer, grid=grid)
            assert emb.vectors.shape[1] == emb.dim and (emb.layer, emb.grid) == (layer, grid)
    dims = {
        layer: embed(store, "tiny", run_id, layer=layer, grid=1).dim
        for layer in ("block1", "block3")
    }
    # global: average and max per channel (2 x 128); a 2x2 grid: 4 averages per channel
    assert dims["block3"] == 256
    assert embed(store, "tiny", run_id, layer="block3", grid=2).dim == 2 * dims["block3"]


def test_pixels_are_the_images_area_averaged_unscaled(store: Store) -> None:
    """The pixels baseline is the image itself, downscaled: columns share one unit, so nothing
    standardises them (per-pixel z-scores blew up the near-constant border pixels)."""
    import torch

    from sslviz.data.cache import open_cache
    from sslviz.maps.embed import BASELINE_SIZE

    vectors = np.asarray(embed(store, "tiny", "pixels", layer="8px").vectors)
    assert vectors.shape[1] == 3 * 8 * 8
    dataset = store.datasets.get_by_name("tiny")
    images = torch.from_numpy(np.array(open_cache(store, dataset.id, BASELINE_SIZE)[:]))
    expected = torch.nn.functional.adaptive_avg_pool2d(images.float() / 255.0, 8).flatten(1)
    np.testing.assert_allclose(vectors, expected.numpy(), atol=1e-6)
    assert vectors.min() >= 0.0 and vectors.max() <= 1.0


def test_cache_hit_miss_and_a_new_checkpoint(store: Store, run_id: int) -> None:
    assert cached_embeddings(store, "tiny", run_id) is None  # never computes
    first = embed(store, "tiny", run_id)
    stamp = first.file.stat().st_mtime_ns
    hit = cached_embeddings(store, "tiny", run_id)
    assert hit is not None and hit.file == first.file
    assert embed(store, "tiny", run_id).file.stat().st_mtime_ns == stamp  # not recomputed
    # the run writes a new checkpoint (a later step): a new embedding, the old file goes
    path = checkpoint_path(store.workspace.run_dir(run_id))
    state = load_checkpoint(path)
    save_checkpoint(path, {**state, "step": state["step"] + 1})
    assert cached_embeddings(store, "tiny", run_id) is None
    second = embed(store, "tiny", run_id)
    assert second.file != first.file and second.step == first.step + 1
    assert not first.file.exists() and second.file.exists()


def test_stopped_embedding_resumes_where_it_stopped(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embed_module, "BATCH", 8)
    monkeypatch.setattr(embed_module, "SAVE_EVERY", 1)
    calls = iter(range(100))
    with pytest.raises(Cancelled):
        embed(store, "tiny", "random", should_stop=lambda: next(calls) >= 3)
    assert cached_embeddings(store, "tiny", "random") is None
    seen: list[int] = []
    resumed = embed(store, "tiny", "random", on_progress=lambda done, total: seen.append(done))
    assert seen[0] == 24  # three batches of 8 were kept
    fresh = np.array(resumed.vectors)
    shutil.rmtree(resumed.file.parent)
    np.testing.assert_allclose(
        fresh, np.asarray(embed(store, "tiny", "random").vectors), rtol=1e-5, atol=1e-6
    )


def test_bad_requests_are_one_line_user_errors(store: Store, run_id: int) -> None:
    dataset = store.datasets.get_by_name("tiny")
    job = store.runs.create(
        dataset_id=dataset.id,
        kind="embedding",
        model_name="small-cnn",
        config={},
        device="cpu",
        epochs=1,
    )
    for source, options, expected in [
        (999, {}, "no run with id 999"),
        (job.id, {}, "has no encoder"),
        (run_id, {"layer": "block9"}, "choose one of: block1, block2, block3"),
        ("pixels", {"grid": 2}, "no pooling grid"),
        ("imagenet", {}, "unknown source"),
    ]:
        with pytest.raises(UserError, match=expected) as info:
            embed(store, "tiny", source, **options)
        assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="no dataset named"):
        embed(store, "nope", "random")


def test_rows_follow_the_dataset_not_the_cache_folder(store: Store, home: Path) -> None:
    emb = embed(store, "tiny", "pixels")
    assert emb.file.is_relative_to(home) and emb.file.with_suffix(".json").exists()
