"""Colorization pieces: ab bins, soft encoding, rebalancing, annealed mean, batches, metrics, the
decoder's resolution and decoding within the gamut of each pixel's lightness."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from sslviz.core.errors import UserError
from sslviz.models.encoders import ENCODERS, create_encoder
from sslviz.pretext import create_task
from sslviz.pretext.ab_bins import (
    L_STEP,
    ab_bins,
    annealed_mean,
    gamut_table,
    in_gamut,
    nearest_bin,
    rebalancing_weights,
)
from sslviz.pretext.colorization import colourfulness, map_sizes, psnr
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


def test_batch_is_l_and_full_resolution_ab(photos32: torch.Tensor) -> None:
    task = create_task("colorization", flip=False)
    batch = task.make_batch(photos32, torch.Generator().manual_seed(0))
    lab = rgb_uint8_to_lab(photos32)
    assert batch.inputs.shape == (16, 1, 32, 32) and batch.targets.shape == (16, 2, 32, 32)
    torch.testing.assert_close((batch.inputs + 1) * 50, lab[:, :1])
    torch.testing.assert_close(batch.targets, lab[:, 1:])
    torch.testing.assert_close(task.encoder_view(photos32), batch.inputs)


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
@pytest.mark.parametrize("size", [32, 128])
def test_predicts_from_a_map_at_quarter_resolution_or_finer(encoder: str, size: int) -> None:
    """A head on the deepest map alone (H/8) bleeds colour across edges: the decoder must also
    read a map at H/4 or finer and predict there, for every registry encoder."""
    task = create_task("colorization")
    images = torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8)
    enc = create_encoder(encoder, in_channels=1, image_size=size)
    model = task.build_model(enc, images)
    sizes = map_sizes(enc, size)
    assert model.layers[0] == enc.layer_names[-1] and len(model.layers) >= 2
    assert sizes[model.layers[-1]] >= size // 4
    batch = task.make_batch(images)
    out, loss = model(batch.inputs, batch.targets)
    assert out.shape == (2, len(task.centres), sizes[model.layers[-1]], sizes[model.layers[-1]])
    assert torch.isfinite(loss)


def test_gamut_table_holds_each_colours_own_bin_and_only_grey_at_the_ends() -> None:
    table = gamut_table()  # (rows, Q)
    centres = ab_bins()
    neutral = int(centres.abs().sum(dim=1).argmin())
    assert table[0].nonzero().flatten().tolist() == [neutral]  # black
    assert table[-1].nonzero().flatten().tolist() == [neutral]  # white
    assert table[len(table) // 2].sum() > 0.5 * len(centres)  # mid-grey lightness: most bins
    g = torch.Generator().manual_seed(1)
    rgb = torch.randint(0, 256, (1, 3, 200_000, 1), generator=g, dtype=torch.uint8)
    lab = rgb_uint8_to_lab(rgb)
    allowed = in_gamut(lab[:, :1])  # (1, Q, N, 1)
    own = nearest_bin(lab[:, 1:], centres)  # (1, N, 1)
    assert allowed.gather(1, own[:, None]).all()
    row = (lab[0, 0, :, 0] / L_STEP).round().long()
    assert torch.equal(allowed[0, :, :, 0].T, table[row])


def test_decode_puts_no_colour_where_the_lightness_has_none() -> None:
    """Logits that want saturated red everywhere: white and black pixels stay neutral, a
    mid-grey one turns red; without the lightness the decode stays at the outputs' size."""
    task = create_task("colorization")
    centres = task.centres
    red = int(((centres - torch.tensor([60.0, 50.0])) ** 2).sum(dim=1).argmin())
    logits = torch.zeros(1, len(centres), 2, 2)
    logits[:, red] = 30.0
    lightness = torch.tensor([100.0, 0.0, 50.0, 50.0]).view(1, 1, 2, 2)
    ab = task.decode(logits, lightness=lightness)  # (1, 2, 2, 2)
    assert ab[0, :, 0, 0].abs().max() < 1e-3 and ab[0, :, 0, 1].abs().max() < 1e-3
    torch.testing.assert_close(ab[0, :, 1, 0], centres[red], atol=1e-3, rtol=0)
    assert task.decode(logits).shape == (1, 2, 2, 2)
    up = task.decode(logits, lightness=torch.full((1, 1, 8, 8), 50.0))
    assert up.shape == (1, 2, 8, 8)


def test_colour_does_not_bleed_into_a_white_background() -> None:
    """A model that paints everything red, on a grey square on white: the white stays exactly
    white (the old decode clipped red into it: pink), the square turns red."""
    task = create_task("colorization")
    images = torch.full((1, 3, 32, 32), 255, dtype=torch.uint8)
    images[:, :, 12:20, 12:20] = 120
    model = task.build_model(create_encoder("small-cnn", in_channels=1), images)
    red = int(((task.centres - torch.tensor([60.0, 50.0])) ** 2).sum(dim=1).argmin())
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.fill_(0.0)
        model.classifier.bias[red] = 30.0
    colour = task.colorize(model, images, temperature=0.38)
    white = torch.ones(32, 32, dtype=torch.bool)
    white[11:21, 11:21] = False
    assert (colour[0][:, white] == 255).all()
    r, g, b = colour[0, :, 16, 16].tolist()
    assert r > g + 40 and r > b + 40


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
    assert set(m) >= {"psnr", "psnr_faithful", "psnr_grey", "colourfulness"}
    assert all(
        isinstance(v, float) and v == v for k, v in m.items() if not k.startswith("faithful")
    )
    assert m["psnr_grey"] > 15  # the true L alone is already a fair picture
    kind, path = task.save_artifacts(model, photos32, tmp_path)["examples"]
    assert kind == "image" and Image.open(path).size[1] > 8 * 32
    colour = task.colorize(model, photos32[:2])
    assert colour.shape == (2, 3, 32, 32) and colour.dtype == torch.uint8
