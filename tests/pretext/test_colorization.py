"""Colorization pieces: ab bins, soft encoding, rebalancing, annealed mean, batches, metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from sslviz.encoders import create_encoder
from sslviz.errors import UserError
from sslviz.pretext import create_task
from sslviz.pretext.colorization import (
    ab_bins,
    annealed_mean,
    colourfulness,
    nearest_bin,
    psnr,
    rebalancing_weights,
    soft_encode,
)
from sslviz.pretext.lab import lab_to_linear, rgb_uint8_to_lab


def test_bins_cover_the_gamut_of_real_colours() -> None:
    centres = ab_bins()
    assert 240 <= len(centres) <= 320  # Zhang et al.: 313 with a looser gamut estimate
    assert (centres % 10 == 0).all() and len(centres.unique(dim=0)) == len(centres)
    # Any sRGB colour falls within half a cell of some bin centre.
    g = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (1, 3, 100_000, 1), generator=g, dtype=torch.uint8)
    ab = rgb_uint8_to_lab(rgb)[:, 1:]
    nearest = centres[nearest_bin(ab, centres).flatten()]
    assert (nearest - ab[0, :, :, 0].T).abs().max() <= 5.0 + 1e-3
    # and a Lab colour far outside sRGB is not a bin
    assert not ((centres[:, 0] == 110) & (centres[:, 1] == -110)).any()
    assert (lab_to_linear(torch.tensor([150.0, 110, -110]).view(1, 3, 1, 1)) > 1).any()


def test_soft_encoding_sums_to_one_over_five_nearest() -> None:
    centres = ab_bins()
    ab = torch.randn(2, 2, 3, 3) * 30
    soft, nearest = soft_encode(ab, centres)  # (2, Q, 3, 3), (2, 3, 3)
    torch.testing.assert_close(soft.sum(dim=1), torch.ones(2, 3, 3))
    assert ((soft > 0).sum(dim=1) == 5).all()
    assert torch.equal(soft.argmax(dim=1), nearest_bin(ab, centres))
    assert torch.equal(nearest, nearest_bin(ab, centres))


def test_annealed_mean_between_mode_and_mean() -> None:
    centres = ab_bins()
    logits = torch.randn(2, len(centres), 2, 2) * 3
    mode = centres[logits.argmax(dim=1)].permute(0, 3, 1, 2)  # (2, 2, 2, 2)
    torch.testing.assert_close(annealed_mean(logits, centres, 1e-4), mode)
    mean = torch.einsum("bqhw,qc->bchw", logits.softmax(dim=1), centres)
    torch.testing.assert_close(annealed_mean(logits, centres, 1.0), mean)


def test_rebalancing_favours_rare_colours(photos32: torch.Tensor) -> None:
    centres = ab_bins()
    ab = rgb_uint8_to_lab(photos32)[:, 1:]
    w = rebalancing_weights(ab, centres)
    assert w.shape == (len(centres),) and (w > 0).all()
    counts = torch.bincount(nearest_bin(ab, centres).flatten(), minlength=len(centres))
    assert w[counts.argmax()] < w[counts == 0].min()  # commonest colour weighs least
    assert w.max() / w.min() <= 2 * len(centres)  # lambda = 0.5 bounds the ratio


def test_batch_is_l_and_ab_at_quarter_resolution(photos32: torch.Tensor) -> None:
    task = create_task("colorization", flip=False)
    batch = task.make_batch(photos32, torch.Generator().manual_seed(0))
    lab = rgb_uint8_to_lab(photos32)
    assert batch.inputs.shape == (16, 1, 32, 32) and batch.targets.shape == (16, 2, 8, 8)
    torch.testing.assert_close((batch.inputs + 1) * 50, lab[:, :1])
    torch.testing.assert_close(batch.targets[:, :, 0, 0], lab[:, 1:, :4, :4].mean(dim=(2, 3)))
    torch.testing.assert_close(task.encoder_view(photos32), batch.inputs)


def test_metrics() -> None:
    grey = torch.full((2, 3, 8, 8), 128, dtype=torch.uint8)
    assert psnr(grey, grey).min() >= 99  # identical images: capped, finite
    assert psnr(grey, grey + 1).tolist() == pytest.approx([48.13, 48.13], abs=0.01)
    assert colourfulness(grey).tolist() == [0.0, 0.0]
    red = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    red[:, 0] = 255
    assert colourfulness(red).item() == pytest.approx(0.3 * (255**2 + 127.5**2) ** 0.5)


def test_options_are_checked() -> None:
    with pytest.raises(UserError, match="l2"):
        create_task("colorization", loss="l1")
    with pytest.raises(UserError, match="temperature"):
        create_task("colorization", temperature=0)
    assert create_task("colorization", loss="l2").metric_name == "bin_accuracy"


@pytest.mark.parametrize("loss", ["classification", "l2"])
def test_evaluate_and_artifacts(photos32: torch.Tensor, tmp_path: Path, loss: str) -> None:
    task = create_task("colorization", loss=loss)
    model = task.build_model(create_encoder("small-cnn", in_channels=1), photos32)
    m = task.evaluate(model, photos32, batch_size=8)
    assert set(m) >= {"psnr", "psnr_grey", "colourfulness"}
    assert all(isinstance(v, float) and v == v for v in m.values())
    assert m["psnr_grey"] > 15  # the true L alone is already a fair picture
    kind, path = task.save_artifacts(model, photos32, tmp_path)["examples"]
    assert kind == "image" and Image.open(path).size[1] > 8 * 32
    colour = task.colorize(model, photos32[:2])
    assert colour.shape == (2, 3, 32, 32) and colour.dtype == torch.uint8
