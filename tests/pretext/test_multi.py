"""Multi-task pretext training: each head gets what its own task makes of the batch, the heads
share one encoder, and each loss is divided by its loss at chance (the best prediction that
ignores the image), so an untrained model scores ~1 per head whatever its number of classes."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sslviz.models.encoders import create_encoder
from sslviz.pretext import create_task
from sslviz.pretext.lab import rgb_uint8_to_lab
from sslviz.pretext.multi import HEADS, MultiModel


def _build(images: torch.Tensor, **options: object):
    task = create_task("multi", **options)
    encoder = create_encoder("small-cnn", image_size=images.shape[-1])
    return task, task.build_model(encoder, images)


def test_make_batch_is_each_heads_own_batch(photos32: torch.Tensor) -> None:
    task = create_task("multi", permutations=30)
    batch = task.make_batch(photos32, torch.Generator().manual_seed(3))
    assert set(batch.inputs) == set(batch.targets) == set(HEADS)
    # the heads draw from one generator in order: the same numbers as the tasks alone
    g = torch.Generator().manual_seed(3)
    for name in HEADS:
        alone = task.heads[name].make_batch(photos32, g)
        assert torch.equal(batch.inputs[name], alone.inputs), name
        assert torch.equal(batch.targets[name], alone.targets), name
    # pure: the same generator state gives the same batch
    again = task.make_batch(photos32, torch.Generator().manual_seed(3))
    assert all(torch.equal(again.inputs[n], batch.inputs[n]) for n in HEADS)
    n = len(photos32)
    assert batch.inputs["rotation"].shape == (4 * n, 3, 32, 32)
    assert batch.inputs["colorization"].shape == (n, 1, 32, 32)
    assert batch.inputs["jigsaw"].shape[:3] == (n, 9, 3)


def test_one_encoder_every_head_trains_it(photos32: torch.Tensor) -> None:
    task, model = _build(photos32, permutations=30)
    assert isinstance(model, MultiModel)
    shared = {id(p) for p in model.encoder.parameters()}
    for name in HEADS:  # each head's encoder is the shared one's modules, not a copy
        assert {id(p) for p in model.heads[name].encoder.parameters()} == shared, name
    batch = task.make_batch(photos32, torch.Generator().manual_seed(0))
    for name in HEADS:  # each head's loss alone reaches the shared encoder
        model.zero_grad()
        _, loss = model.heads[name](batch.inputs[name], batch.targets[name])
        loss.backward()
        grads = [p.grad for p in model.encoder.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), name


def test_losses_are_divided_by_their_loss_at_chance(photos32: torch.Tensor) -> None:
    task, model = _build(photos32, permutations=30)
    chance = dict(zip(HEADS, model.chance.tolist(), strict=True))
    assert math.isclose(chance["rotation"], math.log(4), rel_tol=1e-6)
    assert math.isclose(chance["jigsaw"], math.log(30), rel_tol=1e-6)
    batch = task.make_batch(photos32, torch.Generator().manual_seed(0))
    model.eval()  # no dropout, fixed batch-norm statistics: the same loss on each call
    _, total = model(batch.inputs, batch.targets)
    raw = {n: model.heads[n](batch.inputs[n], batch.targets[n])[1].item() for n in HEADS}
    expected = sum(raw[n] / chance[n] for n in HEADS) / len(HEADS)
    assert math.isclose(total.item(), expected, rel_tol=1e-4)
    assert set(model.last_losses) == set(HEADS)
    # untrained, the classification heads sit at chance: ~1 each
    assert 0.8 < model.last_losses["rotation"] < 1.25
    assert 0.8 < model.last_losses["jigsaw"] < 1.25


def test_colorization_chance_is_the_best_constant_prediction(photos32: torch.Tensor) -> None:
    """The loss of one fixed bin distribution q for every pixel is least at the q chance_loss
    uses, and that least loss is chance_loss: a constant head at that q measures it, and the
    uniform guess (or q smoothed toward it) scores worse."""
    task, model = _build(photos32, permutations=30)
    colour_task, head = task.heads["colorization"], model.heads["colorization"]
    chance = colour_task.chance_loss(head, photos32)
    assert 0 < chance < math.log(len(colour_task.centres)) * float(head.weights.max())

    side = 8  # small-cnn's finest decoded map at 32 px (H/4)
    ab = F.adaptive_avg_pool2d(rgb_uint8_to_lab(photos32)[:, 1:], side)
    from sslviz.pretext.ab_bins import soft_targets

    bins, soft = soft_targets(ab, head.centres)
    mass = torch.zeros(len(head.centres), dtype=torch.float64)
    mass.index_add_(
        0, bins.flatten(), (soft * head.weights[bins[:, 0]][:, None]).flatten().double()
    )
    best = (mass / mass.sum()).clamp(min=1e-30).log().float()

    def constant_loss(log_q: torch.Tensor) -> float:
        with torch.no_grad():
            head.classifier.weight.zero_()
            head.classifier.bias.copy_(log_q)
            _, loss = head(colour_task.make_batch(photos32).inputs, ab)
        return loss.item()

    # the model pools the targets to its own output size: pass them at that size already
    colour_task.options["flip"] = False
    at_best = constant_loss(best)
    assert math.isclose(at_best, chance, rel_tol=1e-3)
    assert constant_loss(torch.zeros_like(best)) > at_best + 0.1  # uniform
    smoothed = (0.5 * best.exp() + 0.5 / len(best)).log()
    assert constant_loss(smoothed) > at_best
