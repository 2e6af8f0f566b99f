"""Quantized ab colour space for colorization (Zhang, Isola, Efros, ECCV 2016, section 3.1):
the in-gamut ab bins, which of them exist at each lightness, soft-encoded targets, class
rebalancing and the annealed-mean decode.

Bins lie on a regular grid (spacing 10), so bins are looked up on the grid: ab / grid, rounded, is
a cell, and a table maps cells to bins (and to the few bins that can be among a point's k nearest).
Memory stays proportional to the pixels, never pixels x bins: the rebalancing of a 256 px sample
used to build a (pixels, bins) distance matrix of gigabytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from sslviz.pretext.lab import (
    D65_WHITE,
    EPS,
    KAPPA,
    RGB_TO_XYZ,
    lab_to_linear,
    rgb_uint8_to_lab,
)

GRID = 10  # ab bin spacing
SOFT_NEIGHBOURS = 5
SOFT_SIGMA = 5.0
REBALANCE_LAMBDA = 0.5
L_STEP = 0.5  # lightness resolution of the gamut table
CHUNK = 1 << 16  # pixels per chunk wherever a per-pixel x per-candidate tensor is built


@lru_cache(maxsize=4)
def _ab_bins(grid: int) -> Tensor:
    # Walk a dense Lab grid (every 1 unit of L, a and b), keep the colours sRGB can show, and
    # mark the ab cell (nearest grid point) of each. A 1-unit grid misses thin slivers of gamut
    # at cell borders, so the cells of a lattice of sRGB colours (every 3rd level) are marked too.
    # ~260 bins at grid 10 (Zhang et al. count 313 with a looser gamut estimate); deterministic,
    # so bin indices are stable across runs and processes. ~0.5 s, once per process.
    reach = 120
    side = 2 * (reach // grid) + 1
    seen = torch.zeros(side * side, dtype=torch.long)

    def mark(ab: Tensor) -> None:  # ab (N, 2)
        cell = (ab / grid).round().long() + reach // grid  # (N, 2) in 0..side-1
        seen.add_(torch.bincount(cell[:, 0] * side + cell[:, 1], minlength=side * side))

    ab = torch.arange(-float(reach), reach + 0.5, 1.0)
    for start in range(0, 101, 20):  # L in chunks, to bound memory
        lab = torch.stack(
            torch.meshgrid(torch.arange(float(start), min(start + 20, 101)), ab, ab, indexing="ij")
        )
        lab = lab.reshape(1, 3, -1, 1)  # (1, 3, N, 1)
        lin = lab_to_linear(lab)
        inside = ((lin >= -1e-6) & (lin <= 1 + 1e-6)).all(dim=1).flatten()  # (N,)
        mark(lab[0, 1:, inside, 0].T)
    v = torch.arange(0, 256, 3, dtype=torch.uint8)
    rgb = torch.stack(torch.meshgrid(v, v, v, indexing="ij")).reshape(1, 3, -1, 1)
    mark(rgb_uint8_to_lab(rgb)[0, 1:, :, 0].T)
    cells = torch.nonzero(seen.view(side, side)).float()  # (Q, 2), sorted by a then b
    return (cells - reach // grid) * grid


def ab_bins(grid: int = GRID) -> Tensor:
    """(Q, 2) float32 centres of the in-gamut ab bins at spacing ``grid``."""
    return _ab_bins(grid).clone()


# ---- grid lookup ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridTables:
    """Lookup tables of a set of bin centres on a regular grid (spacing ``grid``).

    Cell (i, j) is the square of points whose ab / grid rounds to (i + lo, j + lo). ``bin_of``
    maps a cell to the bin at its centre (-1 if none); ``candidates`` lists, per cell, every bin
    that can be among the ``k`` nearest of any point in the cell (padded with the index Q of a
    far-away dummy centre), so k-nearest is a top-k over a few candidates, not over all Q.
    """

    grid: float
    lo: int  # cell coordinate of row/column 0
    side: int
    k: int
    bin_of: Tensor  # (side * side,) int64
    candidates: Tensor  # (side * side, M) int64, values in 0..Q
    padded: Tensor  # (Q + 1, 2) float32: the centres and the dummy


_TABLES: dict[tuple, GridTables | None] = {}


def grid_tables(centres: Tensor, k: int = SOFT_NEIGHBOURS) -> GridTables | None:
    """The lookup tables of ``centres`` (Q, 2), cached; None if they are not on a grid."""
    centres = centres.detach().float().cpu()
    key = (tuple(centres.flatten().tolist()), k)
    if key not in _TABLES:
        _TABLES[key] = _build_tables(centres, k)
    return _TABLES[key]


def _build_tables(centres: Tensor, k: int) -> GridTables | None:
    diffs = (centres[:, None] - centres[None]).abs().flatten()
    diffs = diffs[diffs > 1e-6]
    if len(centres) < k or len(diffs) == 0:
        return None
    grid = float(diffs.min())
    cells = centres / grid
    if (cells - cells.round()).abs().max() > 1e-4:
        return None
    cells = cells.round().long()  # (Q, 2)
    lo = int(cells.min()) - 1  # one cell of margin around the bins
    side = int(cells.max()) + 2 - lo
    bin_of = torch.full((side * side,), -1, dtype=torch.long)
    bin_of[(cells[:, 0] - lo) * side + (cells[:, 1] - lo)] = torch.arange(len(centres))
    # Candidates: a point p of cell c is within g/sqrt(2) of c's centre, and the k-th nearest
    # distance d_k is 1-Lipschitz, so p's k nearest bins are within d_k(c) + sqrt(2) g of c.
    axis = (torch.arange(side) + lo).float() * grid
    cell_centres = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).view(-1, 2)
    dist = torch.cdist(cell_centres, centres)  # (side^2, Q), a few hundred KB
    reach = dist.topk(k, dim=1, largest=False).values[:, -1:] + math.sqrt(2) * grid + 1e-3
    within = dist <= reach  # (side^2, Q)
    width = int(within.sum(dim=1).max())
    order = torch.where(within, dist, torch.full_like(dist, math.inf)).argsort(dim=1)[:, :width]
    candidates = torch.where(
        within.gather(1, order), order, torch.full_like(order, len(centres))
    )  # (side^2, M), the dummy where a cell has fewer candidates
    far = torch.full((1, 2), 1e6)
    return GridTables(grid, lo, side, k, bin_of, candidates, torch.cat([centres, far]))


def _cells(flat: Tensor, tables: GridTables) -> tuple[Tensor, Tensor]:
    """ab (N, 2) -> (cell index (N,), inside the table (N,) bool)."""
    ij = (flat / tables.grid).round().long() - tables.lo  # (N, 2)
    inside = ((ij >= 0) & (ij < tables.side)).all(dim=1)
    ij = ij.clamp(0, tables.side - 1)
    return ij[:, 0] * tables.side + ij[:, 1], inside


def _nearest_flat(flat: Tensor, centres: Tensor) -> Tensor:
    """ab (N, 2) -> nearest bin (N,): the grid table where it knows, chunked brute force else."""
    tables = grid_tables(centres)
    if tables is None:
        idx = torch.empty(len(flat), dtype=torch.long, device=flat.device)
        todo = torch.ones(len(flat), dtype=torch.bool, device=flat.device)
    else:
        cell, inside = _cells(flat, tables)
        idx = tables.bin_of.to(flat.device)[cell]
        todo = ~inside | (idx < 0)  # outside the gamut's cells: rare (averaged or odd colours)
    rest = todo.nonzero().flatten()
    centres = centres.to(flat.device, flat.dtype)
    for start in range(0, len(rest), CHUNK):
        part = rest[start : start + CHUNK]
        idx[part] = torch.cdist(flat[part], centres).argmin(dim=1)
    return idx


def nearest_bin(ab: Tensor, centres: Tensor) -> Tensor:
    """ab (B, 2, h, w) -> index (B, h, w) of the nearest bin centre (centres (Q, 2))."""
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2).float()  # (N, 2)
    return _nearest_flat(flat, centres).view(ab.shape[0], *ab.shape[2:])


def soft_targets(
    ab: Tensor, centres: Tensor, k: int = SOFT_NEIGHBOURS, sigma: float = SOFT_SIGMA
) -> tuple[Tensor, Tensor]:
    """ab (B, 2, h, w) -> (bins (B, k, h, w) int64, weights (B, k, h, w)): the k nearest bins,
    nearest first, with normalized Gaussian weights (Zhang et al. 3.1). Sparse: the loss gathers
    k log-probabilities instead of building a dense (B, Q, h, w) target."""
    b, _, h, w = ab.shape
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2).float()  # (N, 2)
    tables = grid_tables(centres, k)
    idx = torch.empty(len(flat), k, dtype=torch.long, device=flat.device)
    dist = torch.empty(len(flat), k, dtype=flat.dtype, device=flat.device)
    if tables is not None:
        cell, inside = _cells(flat, tables)
        candidates = tables.candidates.to(flat.device)
        padded = tables.padded.to(flat.device)
        for start in range(0, len(flat), CHUNK):
            part = slice(start, start + CHUNK)
            cand = candidates[cell[part]]  # (n, M)
            d = (flat[part, None] - padded[cand]).norm(dim=-1)  # (n, M)
            top = d.topk(k, dim=1, largest=False)  # ascending
            idx[part], dist[part] = cand.gather(1, top.indices), top.values
        rest = (~inside).nonzero().flatten()
    else:
        rest = torch.arange(len(flat), device=flat.device)
    centres = centres.to(flat.device, flat.dtype)
    for start in range(0, len(rest), CHUNK):  # far outside every bin: brute force
        part = rest[start : start + CHUNK]
        top = torch.cdist(flat[part], centres).topk(k, dim=1, largest=False)
        idx[part], dist[part] = top.indices, top.values
    weight = torch.softmax(-(dist**2) / (2 * sigma**2), dim=1)  # (N, k)
    return (
        idx.view(b, h, w, k).permute(0, 3, 1, 2),
        weight.to(ab.dtype).view(b, h, w, k).permute(0, 3, 1, 2),
    )


def rebalancing_weights(ab: Tensor, centres: Tensor, lam: float = REBALANCE_LAMBDA) -> Tensor:
    """ab of training pixels (B, 2, h, w) -> per-bin loss weights (Q,): w ~ 1 / ((1 - lam) p~ +
    lam / Q) with p~ the empirical bin distribution smoothed by a Gaussian (sigma 5), normalized
    so the expected weight under p~ is 1 (Zhang et al. eq. 3-4)."""
    return weights_from_counts(bin_counts(ab, centres), centres, lam)


def bin_counts(ab: Tensor, centres: Tensor) -> Tensor:
    """ab (B, 2, h, w) -> pixels per nearest bin (Q,) float."""
    return torch.bincount(nearest_bin(ab, centres).flatten(), minlength=len(centres)).float()


def weights_from_counts(counts: Tensor, centres: Tensor, lam: float = REBALANCE_LAMBDA) -> Tensor:
    """Bin counts (Q,) -> rebalancing weights (Q,) (see ``rebalancing_weights``)."""
    q = centres.shape[0]
    if counts.sum() == 0:
        return torch.ones(q)
    kernel = torch.exp(-(torch.cdist(centres, centres) ** 2) / (2 * SOFT_SIGMA**2))  # (Q, Q)
    p = kernel @ (counts / counts.sum())
    p = p / p.sum()
    w = 1.0 / ((1 - lam) * p + lam / q)
    return w / (p * w).sum()


# ---- gamut by lightness ----------------------------------------------------------------------


@lru_cache(maxsize=4)
def _gamut_table(grid: int) -> Tensor:
    # Every 8-bit sRGB colour (all 2^24, one red level at a time, by lookup tables and numpy:
    # ~0.7 s once per process) marks its (lightness row, ab bin). Exact for 8-bit images, which
    # is all the app decodes. Colours within 0.01 row of a row border mark both rows, so a float
    # rounding difference against the torch Lab conversion can't drop a colour's own bin.
    centres = _ab_bins(grid)
    tables = grid_tables(centres)
    assert tables is not None
    rows = int(round(100 / L_STEP)) + 1
    v = np.arange(256) / 255.0
    lin = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    m = np.array(RGB_TO_XYZ) / np.array(D65_WHITE)[:, None]  # rows X, Y, Z over the white
    green_blue = [
        (m[i, 1] * lin[:, None] + m[i, 2] * lin[None, :]).astype(np.float32) for i in range(3)
    ]
    bin_of = tables.bin_of.numpy()
    seen = np.zeros(rows * (len(centres) + 1), dtype=bool)

    def f(t: np.ndarray) -> np.ndarray:
        return np.where(t > EPS, np.cbrt(t), KAPPA * t + 4 / 29)

    for red in range(256):
        fx, fy, fz = (f(np.float32(m[i, 0] * lin[red]) + green_blue[i]) for i in range(3))
        lightness, a, b = 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)
        i = np.clip(np.rint(a / grid).astype(np.int64) - tables.lo, 0, tables.side - 1)
        j = np.clip(np.rint(b / grid).astype(np.int64) - tables.lo, 0, tables.side - 1)
        q = bin_of[i * tables.side + j]  # -1 (never for sRGB colours) lands on the dummy
        q = np.where(q < 0, len(centres), q)
        for shift in (-0.01, 0.01):
            row = np.clip(np.rint(lightness / L_STEP + shift).astype(np.int64), 0, rows - 1)
            seen[(row * (len(centres) + 1) + q).ravel()] = True
    table = torch.from_numpy(seen.reshape(rows, -1)[:, : len(centres)].copy())
    neutral = int(centres.abs().sum(dim=1).argmin())
    table[:, neutral] = True  # grey exists at every lightness; no row is ever empty
    return table


def gamut_table(grid: int = GRID) -> Tensor:
    """(rows, Q) bool: bin q holds an sRGB colour at lightness row r (L = r * L_STEP +- half a
    step). At L = 100 only ab = 0 is there; in the middle, most bins."""
    return _gamut_table(grid)


def in_gamut(lightness: Tensor, grid: int = GRID) -> Tensor:
    """L (B, 1, h, w) in [0, 100] -> (B, Q, h, w) bool: the bins in gamut at each pixel's L."""
    table = gamut_table(grid).to(lightness.device)
    row = (lightness[:, 0] / L_STEP).round().long().clamp(0, len(table) - 1)  # (B, h, w)
    return table[row].permute(0, 3, 1, 2)


def annealed_mean(
    logits: Tensor, centres: Tensor, temperature: float, allowed: Tensor | None = None
) -> Tensor:
    """logits (B, Q, h, w) -> ab (B, 2, h, w): the mean of softmax(logits / T) over bin centres,
    only over the ``allowed`` bins (B, Q, h, w) bool if given (those in gamut at each pixel's L).
    T = 1 is the mean of the predicted distribution, T -> 0 its mode."""
    scaled = logits.float() / temperature
    if allowed is not None:
        scaled = scaled.masked_fill(~allowed, -math.inf)
    probs = torch.softmax(scaled, dim=1)  # (B, Q, h, w)
    return torch.einsum("bqhw,qc->bchw", probs, centres.to(probs))
