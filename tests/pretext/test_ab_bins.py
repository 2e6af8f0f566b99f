"""ab bins looked up on the grid: equal to brute force everywhere, and memory that stays small."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from sslviz.pretext.ab_bins import (
    SOFT_NEIGHBOURS,
    SOFT_SIGMA,
    ab_bins,
    nearest_bin,
    soft_targets,
)


def soft_encode(
    ab: torch.Tensor, centres: torch.Tensor, k: int = SOFT_NEIGHBOURS, sigma: float = SOFT_SIGMA
) -> tuple[torch.Tensor, torch.Tensor]:
    """ab (B, 2, h, w) -> dense soft targets (B, Q, h, w) and the nearest bin (B, h, w): the
    sparse ``soft_targets`` scattered out (training uses the sparse form)."""
    idx, weight = soft_targets(ab, centres, k, sigma)
    soft = torch.zeros(ab.shape[0], len(centres), *ab.shape[2:], dtype=weight.dtype)
    return soft.to(ab.device).scatter_(1, idx, weight), idx[:, 0]


def random_ab(seed: int, n: int = 20_000) -> torch.Tensor:
    """(1, 2, n, 1): most inside the bins' range, some far outside it (out-of-table cells)."""
    g = torch.Generator().manual_seed(seed)
    near = torch.rand(2, n - n // 8, generator=g) * 260 - 130
    far = torch.randn(2, n // 8, generator=g) * 200
    return torch.cat([near, far], dim=1).view(1, 2, n, 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grid_lookup_equals_brute_force(seed: int) -> None:
    centres = ab_bins()
    ab = random_ab(seed)
    flat = ab[0, :, :, 0].T.double()  # (N, 2)
    dist = torch.cdist(flat, centres.double())  # (N, Q) exact enough: fine for 20k test points
    nearest = nearest_bin(ab, centres).flatten()
    torch.testing.assert_close(dist.gather(1, nearest[:, None])[:, 0], dist.min(dim=1).values)
    bins, weight = soft_targets(ab, centres)  # (1, k, N, 1) each
    bins, weight = bins[0, :, :, 0].T, weight[0, :, :, 0].T  # (N, k)
    ref = dist.topk(SOFT_NEIGHBOURS, dim=1, largest=False).values  # ascending
    torch.testing.assert_close(dist.gather(1, bins), ref, atol=1e-3, rtol=0)  # k nearest, in order
    assert (bins == nearest[:, None]).any(dim=1).all()
    gauss = torch.softmax(-(ref**2) / (2 * SOFT_SIGMA**2), dim=1).float()
    near = flat.abs().max(dim=1).values < 130  # far away, float32 distances round the weights
    torch.testing.assert_close(weight[near], gauss[near], atol=1e-4, rtol=0)


def test_lookup_works_for_centres_off_any_grid() -> None:
    g = torch.Generator().manual_seed(3)
    centres = torch.randn(40, 2, generator=g) * 50  # not on a lattice: brute force, chunked
    ab = random_ab(4, 5_000)
    flat = ab[0, :, :, 0].T
    assert torch.equal(nearest_bin(ab, centres).flatten(), torch.cdist(flat, centres).argmin(dim=1))
    soft, nearest = soft_encode(ab, centres)
    torch.testing.assert_close(soft.sum(dim=1), torch.ones(1, 5_000, 1))
    assert torch.equal(nearest, nearest_bin(ab, centres))


PEAK_SCRIPT = textwrap.dedent(
    """
    import json
    import torch
    torch.set_num_threads(1)
    from sslviz.models.encoders import create_encoder
    from sslviz.pretext import create_task
    task = create_task("colorization")
    encoder = create_encoder("small-cnn", in_channels=1, image_size=256)
    g = torch.Generator().manual_seed(0)
    sample = torch.randint(0, 256, (96, 3, 256, 256), generator=g, dtype=torch.uint8)
    task.build_model(create_encoder("small-cnn", in_channels=1), sample[:2])  # warm-up
    def status_mb(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith(field))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current RSS
    before = status_mb("VmRSS:")
    task.build_model(encoder, sample)
    print(json.dumps({"extra_mb": status_mb("VmHWM:") - before}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_rebalancing_memory_stays_small_at_256_px() -> None:
    """Building the model measures the ab prior of the training sample: 96 images at 256 px are
    ~400k output pixels; a (pixels x bins) distance matrix was ~400 MB (4.4 GB for the 1,024
    images training samples). The peak RSS of a fresh process may grow by < 100 MB."""
    out = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT], capture_output=True, text=True, check=True
    ).stdout
    extra = json.loads(out)["extra_mb"]
    assert extra < 100, f"building the model took {extra:.0f} MB more peak memory"


def test_soft_encoding_sums_to_one_over_five_nearest() -> None:
    centres = ab_bins()
    ab = torch.randn(2, 2, 3, 3) * 30
    soft, nearest = soft_encode(ab, centres)  # (2, Q, 3, 3), (2, 3, 3)
    torch.testing.assert_close(soft.sum(dim=1), torch.ones(2, 3, 3))
    assert ((soft > 0).sum(dim=1) == 5).all()
    assert torch.equal(soft.argmax(dim=1), nearest_bin(ab, centres))
    assert torch.equal(nearest, nearest_bin(ab, centres))
