"""The jigsaw permutation sets: valid, distinct, far apart, deterministic, fast."""

from __future__ import annotations

import time

import pytest
import torch

from sslviz.pretext.permutations import hamming, maximal_hamming_permutations


@pytest.mark.parametrize(("n", "min_distance"), [(30, 7), (100, 6), (1000, 4)])
def test_sets_are_distinct_permutations_far_apart(n: int, min_distance: int) -> None:
    perms = maximal_hamming_permutations(n)
    assert perms.shape == (n, 9) and perms.dtype == torch.int64
    assert torch.equal(perms.sort(dim=1).values, torch.arange(9).expand(n, 9))
    assert len({tuple(p) for p in perms.tolist()}) == n
    d = hamming(perms[:, None], perms[None])  # (n, n)
    d.fill_diagonal_(9)
    assert d.min().item() >= min_distance
    assert d.float().mean().item() > 7.5  # random pairs of permutations average 8


def test_deterministic_and_seeded() -> None:
    assert torch.equal(maximal_hamming_permutations(30), maximal_hamming_permutations(30, seed=0))
    assert not torch.equal(
        maximal_hamming_permutations(30), maximal_hamming_permutations(30, seed=1)
    )


def test_thousand_is_fast() -> None:
    start = time.perf_counter()
    maximal_hamming_permutations(1000, seed=3)  # a seed no other test caches
    assert time.perf_counter() - start < 5.0
