"""Every registered task x every registered encoder trains (parametrized over both registries)."""

from __future__ import annotations

import pytest
import torch

from sslviz.core.errors import UserError
from sslviz.models.encoders import ENCODERS, create_encoder
from sslviz.pretext import TASKS, PretextTask, create_task


def build(name: str, encoder: str, images: torch.Tensor, **options: object):
    task = create_task(name, **options)
    size = images.shape[-1]
    enc = create_encoder(
        encoder, in_channels=task.input_channels, image_size=task.encoder_input_size(size)
    )
    return task, task.build_model(enc, images)


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
@pytest.mark.parametrize("name", sorted(TASKS))
def test_forward_backward_reaches_the_encoder(name: str, encoder: str) -> None:
    from .conftest import photo_crops

    images = photo_crops(4, 24)
    task, model = build(name, encoder, images)
    batch = task.make_batch(images, torch.Generator().manual_seed(0))
    outputs, loss = model(batch.inputs, batch.targets)
    assert loss is not None and loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    assert 0.0 <= task.batch_metric(_detached(outputs), batch.targets) <= 1.0
    outputs_only, no_loss = model(batch.inputs)
    assert no_loss is None and _shapes(outputs_only) == _shapes(outputs)


def _detached(outputs):  # a multi-task model's outputs are a dict by head
    if isinstance(outputs, dict):
        return {name: out.detach() for name, out in outputs.items()}
    return outputs.detach()


def _shapes(outputs):
    if isinstance(outputs, dict):
        return {name: out.shape for name, out in outputs.items()}
    return outputs.shape


@pytest.mark.parametrize("name", sorted(TASKS))
def test_interface(name: str) -> None:
    task = create_task(name)
    assert isinstance(task, PretextTask) and task.name == name
    assert isinstance(task.metric_name, str) and task.min_image_size() >= 8
    size = max(32, task.min_image_size())
    images = torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8)
    view = task.encoder_view(images)  # what embeddings of whole images are computed on
    assert view.shape == (2, task.input_channels, size, size) and view.dtype == torch.float32
    enc = create_encoder("small-cnn", in_channels=task.input_channels).eval()
    assert enc.embed(view).shape == (2, enc.embed_dim)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_state_dict_round_trip(name: str, photos32: torch.Tensor) -> None:
    """Checkpoints restore everything, including data-dependent buffers (rebalancing weights)."""
    task, model = build(name, "small-cnn", photos32)
    _, fresh = build(name, "small-cnn", photos32[:2])
    fresh.load_state_dict(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_unknown_names_and_options_list_valid_ones() -> None:
    with pytest.raises(UserError, match="rotation"):
        create_task("inpainting")
    with pytest.raises(UserError, match="permutations"):
        create_task("jigsaw", permutation=100)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_tiny_overfit(name: str) -> None:
    """A few dozen steps on 8 small images drive the loss well down: the task is learnable."""
    from .conftest import photo_crops

    torch.manual_seed(0)
    images = photo_crops(8, max(16, create_task(name).min_image_size()))
    options = {"permutations": 30} if name in ("jigsaw", "multi") else {}
    task, model = build(name, "small-cnn", images, **options)
    batch = task.make_batch(images, torch.Generator().manual_seed(0))  # the same batch each step
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        _, loss = model(batch.inputs, batch.targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * losses[0], losses


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("name", sorted(TASKS))
def test_same_batch_on_cuda_as_on_cpu(name: str, photos32: torch.Tensor) -> None:
    task = create_task(name)
    cpu = task.make_batch(photos32, torch.Generator().manual_seed(4))
    gpu = task.make_batch(photos32.cuda(), torch.Generator().manual_seed(4))
    pairs = [(gpu.inputs, cpu.inputs), (gpu.targets, cpu.targets)]
    if isinstance(cpu.inputs, dict):  # multi-task: each head's tensors
        pairs = [(g[n], c[n]) for g, c in pairs for n in c]
    for on_gpu, on_cpu in pairs:
        assert on_gpu.is_cuda
        if on_cpu.is_floating_point():  # inputs, colorization's ab: float maths on both
            torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=1e-4, rtol=1e-4)
        else:  # class indices: the same labels
            assert torch.equal(on_gpu.cpu(), on_cpu)
