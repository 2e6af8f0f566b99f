"""Permutation sets for the jigsaw task, chosen greedily for maximal Hamming distance.

Noroozi & Favaro (ECCV 2016, Algorithm 1) grow the set one permutation at a time, each time taking
the candidate farthest from those already chosen, so that puzzles differ in many tile positions and
the task can't be solved by spotting one or two swapped tiles. Their algorithm scores a candidate by
its *average* distance to the set; we score by the *minimum* distance (ties broken by the average),
a greedy max-min that keeps the average as high and guarantees a larger minimum (e.g. >= 6 for 100
permutations of 9 tiles). All 9! = 362,880 candidates are scored at every step with numpy (1000 permutations: < 1 s).
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

SIZES = (30, 100, 1000)  # the sizes the UI and CLI offer; any 1 <= n <= 9! works


@lru_cache(maxsize=1)
def _all_permutations() -> np.ndarray:
    """(9!, 9) int8, every ordering of 9 tiles in lexicographic order."""
    return np.array(list(itertools.permutations(range(9))), dtype=np.int8)


@lru_cache(maxsize=8)
def _greedy(n: int, seed: int) -> np.ndarray:
    perms = _all_permutations()  # (M, 9)
    if not 1 <= n <= len(perms):
        raise ValueError(f"permutation set size must be in 1..{len(perms)}, got {n}")
    rng = np.random.default_rng(seed)
    cands = perms
    # at[j, v] marks the candidates that put tile v at position j, so the number of positions a
    # candidate shares with permutation p is sum_j at[j, p[j]]: 9 byte-array adds per step.
    at = np.stack([np.stack([cands[:, j] == v for v in range(9)]) for j in range(9)])  # (9,9,M)
    at = at.view(np.uint8)

    def distance_to(i: int) -> np.ndarray:
        p = cands[i]
        same = at[0, p[0]].copy()
        for j in range(1, 9):
            same += at[j, p[j]]
        return 9 - same.astype(np.int16)  # (M,)

    chosen = [int(rng.integers(len(cands)))]
    min_d = distance_to(chosen[0])  # (M,) running min distance to the chosen set
    sum_d = min_d.copy()  # (M,) running sum, for the tie-break by average
    for _ in range(n - 1):
        best = np.flatnonzero(min_d == min_d.max())  # chosen rows have min_d 0: never picked
        j = int(best[sum_d[best].argmax()])
        chosen.append(j)
        d = distance_to(j)
        np.minimum(min_d, d, out=min_d)
        sum_d += d
    return cands[chosen].astype(np.int64)


def maximal_hamming_permutations(n: int, seed: int = 0) -> Tensor:
    """(n, 9) int64: row p lists, for each position of the shuffled puzzle, which original tile
    goes there. Deterministic for (n, seed); computed once per process and cached."""
    return torch.from_numpy(_greedy(n, seed).copy())


def hamming(a: Tensor, b: Tensor) -> Tensor:
    """Number of positions where permutations differ: (..., 9) x (..., 9) -> (...)."""
    return (a != b).sum(dim=-1)
