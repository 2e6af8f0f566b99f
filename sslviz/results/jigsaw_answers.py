"""Jigsaw results puzzle by puzzle: the shuffled tiles, the permutation the model names, the image
reassembled by that guess, and how far the guess is from the truth (Hamming distance).

Held-out puzzles come from the task's ``eval_layout`` with the run's seed over the same held-out
images as ``sslviz eval``, so the per-puzzle answers add up to its accuracy.

A permutation ``p`` (a row of the set) says: position j of the shuffled puzzle holds original tile
``p[j]``. Tiles are numbered in reading order (tile k = row k // 3, column k % 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sslviz.pretext.jigsaw import (
    GREY_WEIGHTS,
    JigsawLayout,
    board,
    cut_tiles,
    shuffled_and_reassembled,
    tile_side,
)
from sslviz.pretext.permutations import hamming


def permutation_set_stats(permutations: Tensor) -> tuple[int, int]:
    """(size, minimum Hamming distance between two different permutations) of a (n, 9) set."""
    n = len(permutations)
    if n < 2:
        return n, 0
    d = (permutations[:, None, :] != permutations[None, :, :]).sum(dim=2)  # (n, n)
    d.fill_diagonal_(9)
    return n, int(d.min())


def display_tiles(
    images: Tensor, layout: JigsawLayout, scale: int = 1, *, greyed: bool = True
) -> Tensor:
    """The tiles the layout cuts, in original order, as the model got them (some grey unless
    ``greyed`` is False), from
    uint8 ``images`` (N, 3, S*scale, S*scale): (N, 9, 3, t*scale, t*scale)."""
    size = min(images.shape[-2:]) // scale
    tiles = cut_tiles(images, layout.offsets * scale, tile_side(size) * scale)
    if not greyed:
        return tiles
    luma = (tiles.float() * tiles.new_tensor(GREY_WEIGHTS, dtype=torch.float32).view(3, 1, 1)).sum(
        dim=2, keepdim=True
    )
    greyed = luma.round().clamp(0, 255).to(torch.uint8).expand_as(tiles)
    return torch.where(layout.grey[..., None, None, None], greyed, tiles)


@dataclass(frozen=True)
class JigsawResults:
    paths: list[str]
    images: Tensor  # uint8 (N, 3, S, S)
    layout: JigsawLayout
    permutations: Tensor  # (n, 9) the run's set
    logits: Tensor  # (N, n)

    @property
    def labels(self) -> Tensor:
        return self.layout.labels

    @property
    def predicted(self) -> Tensor:
        """(N,) the model's permutation index."""
        return self.logits.argmax(dim=1)

    @property
    def hamming(self) -> Tensor:
        """(N,) tiles out of place in the model's answer (0 = solved)."""
        return hamming(self.permutations[self.predicted], self.permutations[self.labels])

    @property
    def top5(self) -> Tensor:
        """(N,) bool: the true permutation is among the model's five likeliest."""
        k = min(5, self.logits.shape[1])
        return (self.logits.topk(k, dim=1).indices == self.labels[:, None]).any(dim=1)

    def hamming_histogram(self) -> list[int]:
        """Counts of puzzles by Hamming distance 0..9."""
        return torch.bincount(self.hamming, minlength=10).tolist()

    def boards(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        """(shuffled, reassembled by the model, original tiles in place and in colour) boards of
        puzzle i."""
        one = JigsawLayout(
            self.layout.offsets[i : i + 1],
            self.layout.labels[i : i + 1],
            self.layout.grey[i : i + 1],
        )
        tiles = display_tiles(self.images[i : i + 1], one)[0]  # (9, 3, t, t)
        perm, pred = self.permutations[self.labels[i]], self.permutations[self.predicted[i]]
        shuffled, reassembled = shuffled_and_reassembled(tiles, perm, pred)
        original = display_tiles(self.images[i : i + 1], one, greyed=False)[0]
        return board(shuffled), board(reassembled), board(original)
