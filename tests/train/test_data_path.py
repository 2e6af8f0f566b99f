"""The decode-once cache, the held-out split, batch plans and batched augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sslviz.data.cache import cache_path, decode_square, open_cache
from sslviz.pretext import create_task
from sslviz.training.batches import BatchLoader, BatchPlan, Prefetcher, augment, split_indices


def test_cache_is_built_once_in_image_order_and_reused(store, tiny):
    calls = []
    cache = open_cache(store, tiny.id, 24, on_progress=lambda d, t: calls.append((d, t)))
    path = cache_path(store, tiny.id, 24)
    assert cache.shape == (40, 3, 24, 24) and cache.dtype == np.uint8
    assert isinstance(cache, np.memmap)
    assert calls[-1] == (40, 40)
    left = [p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")]
    assert left == [path.name]  # no temp file left behind (the build's lock file may stay)

    images = store.datasets.images(tiny.id)  # the dataset's order, by path
    folder = store.workspace.dataset_dir(tiny.id)
    for row in (0, 17, 39):
        np.testing.assert_array_equal(cache[row], decode_square(folder / images[row].file, 24))

    stamp = path.stat().st_mtime_ns
    again = open_cache(store, tiny.id, 24, on_progress=lambda d, t: calls.append("rebuilt"))
    assert "rebuilt" not in calls and path.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again, cache)


def test_a_cache_decoded_under_older_rules_is_rebuilt_and_removed(store, tiny):
    """Caches made before transparency keys and thin images were decoded right (``<size>.npy``)
    would keep feeding the model black backgrounds and slivers: they are rebuilt, and removed."""
    old = cache_path(store, tiny.id, 16).with_name("16.npy")
    old.parent.mkdir(parents=True)
    np.save(old, np.zeros((40, 3, 16, 16), np.uint8))  # the right shape, the old decoding
    cache = open_cache(store, tiny.id, 16)
    assert cache.any() and not old.exists()
    left = [p.name for p in old.parent.iterdir() if not p.name.endswith(".lock")]
    assert left == [cache_path(store, tiny.id, 16).name]


def test_cache_pool_matches_serial(store, make_dataset):
    ds = make_dataset("many", n=70)  # above the pool threshold
    pooled = np.array(open_cache(store, ds.id, 16, workers=2))
    cache_path(store, ds.id, 16).unlink()
    serial = np.array(open_cache(store, ds.id, 16, workers=1))
    np.testing.assert_array_equal(pooled, serial)


@pytest.mark.parametrize("n", [10, 11, 40, 1001])
def test_split_is_deterministic_disjoint_and_at_least_a_tenth(n):
    train, held = split_indices(n, 0.1, seed=3)
    again_train, again_held = split_indices(n, 0.1, seed=3)
    np.testing.assert_array_equal(train, again_train)
    np.testing.assert_array_equal(held, again_held)
    assert not set(train) & set(held)
    assert sorted([*train, *held]) == list(range(n))
    assert len(held) >= max(1, 0.1 * n)
    other_train, _ = split_indices(n, 0.1, seed=4)
    assert n < 20 or not np.array_equal(train, other_train)


def test_ranks_split_each_global_batch_exactly():
    train = np.arange(100, 200)
    whole = BatchPlan(train, batch_size=16, seed=1)
    ranks = [BatchPlan(train, batch_size=16, seed=1, rank=r, world=2) for r in range(2)]
    for epoch in (0, 1):
        seen = []
        for i in range(whole.steps_per_epoch):
            shards = [p.indices(epoch, i) for p in ranks]
            assert not set(shards[0]) & set(shards[1])
            assert sorted(np.concatenate(shards)) == sorted(whole.indices(epoch, i))
            seen += list(whole.indices(epoch, i))
        assert len(set(seen)) == whole.steps_per_epoch * 16  # no image twice in an epoch
    assert not np.array_equal(whole.indices(0, 0), whole.indices(1, 0))


def test_augment_only_shifts_and_flips():
    images = torch.randint(0, 256, (8, 3, 12, 12), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    flipped = augment(images, g, pad=0)
    for original, out in zip(images, flipped, strict=True):
        assert torch.equal(out, original) or torch.equal(out, original.flip(-1))
    shifted = augment(images, torch.Generator().manual_seed(1), pad=2)
    assert shifted.shape == images.shape and shifted.dtype == torch.uint8
    # the centre survives any shift of <= 2 px (up to a flip)
    for original, out in zip(images, shifted, strict=True):
        centre = original[:, 4:8, 4:8]
        windows = [out[:, r : r + 4, c : c + 4] for r in range(2, 7) for c in range(2, 7)]
        flipped_windows = [w.flip(-1) for w in windows]
        assert any(torch.equal(w, centre) for w in windows + flipped_windows)


def test_augment_can_leave_the_flip_out():
    images = torch.randint(0, 256, (16, 3, 12, 12), dtype=torch.uint8)
    assert torch.equal(augment(images, torch.Generator().manual_seed(0), pad=0, flip=False), images)


def test_loader_batches_are_a_pure_function_of_seed_and_step(store, tiny):
    cache = open_cache(store, tiny.id, 24)
    plan = BatchPlan(np.arange(36), batch_size=8, seed=0)
    loader = BatchLoader(cache, plan, create_task("rotation"), torch.device("cpu"))
    full = list(loader.epoch(1))
    tail = list(loader.epoch(1, start=2))
    assert [i for i, _, _ in full] == list(range(plan.steps_per_epoch))
    assert torch.equal(full[2][2].inputs, tail[0][2].inputs)
    assert full[0][1] == 8 and full[0][2].inputs.shape == (32, 3, 24, 24)


def test_prefetcher_reraises_errors_from_its_thread():
    def produce(i):
        if i == 2:
            raise RuntimeError("boom")
        return i

    prefetch = Prefetcher(produce, range(5))
    got = []
    with pytest.raises(RuntimeError, match="boom"):
        for _, value in prefetch:
            got.append(value)
    prefetch.close()
    assert got == [0, 1]
