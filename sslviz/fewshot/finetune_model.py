"""The model a fine-tune trains, and how it is built, started and run.

``FineTuneModel`` is the parent's encoder, one layer's features pooled over a grid, standardized
with fixed statistics, and a linear head. The head starts at the exact logistic regression of
the frozen features (the "LP" of LP-FT, Kumar et al., ICLR 2022), so fine-tuning starts from the
best linear probe, not from a random head whose first gradients would wreck the pretrained
features. BatchNorm keeps its pretext statistics: batches of a few dozen labeled images would make
them noise.

On CUDA every forward pass runs under bf16 autocast, as pretext training does; elsewhere in fp32.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from sslviz.core.errors import UserError
from sslviz.models.checkpoint import checkpoint_path, load_checkpoint

if TYPE_CHECKING:
    from sslviz.maps.embed import SourceEncoder
    from sslviz.store import Run, Store

PREDICT_BATCH = 256  # images per forward pass when predicting many images
View = Callable[[Tensor], Tensor]  # uint8 (B, 3, S, S) -> the encoder's input


class FineTuneModel(nn.Module):
    """``forward(x (B, C, S, S)) -> logits (B, K)``."""

    def __init__(self, encoder: nn.Module, layer: str, grid: int, n_classes: int) -> None:
        super().__init__()
        self.encoder, self.layer, self.grid = encoder, layer, grid
        dim = encoder.pooled_dim(layer, grid)
        self.register_buffer("mean", torch.zeros(dim))  # (D,)
        self.register_buffer("std", torch.ones(dim))  # (D,)
        self.head = nn.Linear(dim, n_classes)

    def features(self, x: Tensor) -> Tensor:
        """x (B, C, S, S) float -> standardized features (B, D), in fp32."""
        return (self.encoder.embed(x, self.layer, self.grid).float() - self.mean) / self.std

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def train(self, mode: bool = True) -> FineTuneModel:
        super().train(mode)
        for module in self.encoder.modules():  # keep the pretext BatchNorm statistics
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self


def autocast(device: torch.device) -> torch.autocast:
    """bf16 autocast on CUDA (as ``training.train`` does); a no-op context elsewhere."""
    on_cuda = device.type == "cuda"
    return torch.autocast("cuda" if on_cuda else "cpu", dtype=torch.bfloat16, enabled=on_cuda)


# --- sources: the parent's encoder and a fine-tune's ------------------------------------------------
def finetuned_encoder(store: Store, run: Run) -> SourceEncoder:
    """A fine-tune's encoder (its chosen state) as an embedding source (``sslviz.maps.embed``)."""
    from sslviz.maps.embed import SourceEncoder

    path = checkpoint_path(store.workspace.run_dir(run.id))
    if not path.exists():
        raise UserError(f"fine-tune {run.id} has no checkpoint yet ({run.status}): wait for it")
    checkpoint = load_checkpoint(path)
    encoder, view, size = blank_encoder(checkpoint["source"])
    state = checkpoint["best"]["model"] if checkpoint.get("best") else checkpoint["model"]
    encoder.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("encoder.")})
    return SourceEncoder(encoder.eval(), view, size, int(checkpoint["step"]))


def blank_encoder(source: Mapping[str, Any]) -> tuple[Any, View, int]:
    """An untrained encoder shaped like the one described by ``source`` (the parent pretext
    run's task, task options, encoder name and image size), its view, its image size."""
    from sslviz.models.encoders import create_encoder
    from sslviz.pretext import create_task

    task = create_task(source["task"], **dict(source.get("task_options") or {}))
    size = int(source["image_size"])
    encoder = create_encoder(
        source["encoder"],
        in_channels=task.input_channels,
        image_size=task.encoder_input_size(size),
    )
    return encoder, task.encoder_view, size


def source_description(store: Store, parent: Run) -> dict[str, Any]:
    """What the parent's encoder is (a pretext run's config, or a parent fine-tune's own)."""
    if parent.kind == "finetune":
        path = checkpoint_path(store.workspace.run_dir(parent.id))
        return dict(load_checkpoint(path)["source"])
    from sslviz.training.config import TrainConfig

    config = TrainConfig.from_dict(parent.config)
    keys = ("task", "task_options", "encoder", "image_size")
    return {key: getattr(config, key) for key in keys}


# --- starting points --------------------------------------------------------------------------------
def fit_feature_scale(
    model: FineTuneModel, cache: np.ndarray, view: View, device: torch.device
) -> None:
    """Per-feature mean and std of the untouched encoder over (up to) 1,024 images spread over
    the dataset, so the head starts on standardized features (like a standardized logreg)."""
    rows = np.unique(np.linspace(0, len(cache) - 1, min(1024, len(cache))).astype(int))
    x = torch.from_numpy(np.ascontiguousarray(cache[rows]))  # (n, 3, S, S)
    model.eval()
    with torch.inference_mode(), autocast(device):
        features = torch.cat(
            [
                model.encoder.embed(
                    view(x[i : i + PREDICT_BATCH]).to(device), model.layer, model.grid
                ).float()
                for i in range(0, len(x), PREDICT_BATCH)
            ]
        )  # (n, D)
    model.mean.copy_(features.mean(0))
    model.std.copy_(features.std(0, unbiased=False).clamp_min(1e-4))


def fit_head(
    model: FineTuneModel, images: Tensor, y: Tensor, view: View, device: torch.device
) -> None:
    """Set the head to the logistic regression of the model's un-augmented features of
    ``images`` (uint8 (n, 3, S, S)) with classes ``y`` (n,): LP-FT's linear probe, solved exactly
    — at the start, and again on more labels once the encoder is chosen."""
    from sklearn.linear_model import LogisticRegression

    model.eval()
    with torch.inference_mode(), autocast(device):
        features = torch.cat(
            [
                model.features(view(images[i : i + PREDICT_BATCH]).to(device)).float().cpu()
                for i in range(0, len(images), PREDICT_BATCH)
            ]
        ).numpy()  # (n, D)
    probe = LogisticRegression(C=1.0, max_iter=2000).fit(features, y.numpy())
    coef = torch.as_tensor(probe.coef_, dtype=torch.float32)  # (K, D), or (1, D) for 2 classes
    bias = torch.as_tensor(probe.intercept_, dtype=torch.float32)
    if coef.shape[0] == 1:  # binary: sklearn keeps one row; softmax over (-z/2, z/2) is the same
        coef, bias = torch.cat([-coef / 2, coef / 2]), torch.cat([-bias / 2, bias / 2])
    with torch.no_grad():
        model.head.weight.copy_(coef.to(device))
        model.head.bias.copy_(bias.to(device))


def predict_logits(
    model: FineTuneModel, images: Tensor, view: View, device: torch.device
) -> Tensor:
    """uint8 images (N, 3, S, S) -> logits (N, K) on the CPU, in eval mode, batched."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast(device):
            out = [
                model(view(images[i : i + PREDICT_BATCH]).to(device)).float().cpu()
                for i in range(0, len(images), PREDICT_BATCH)
            ]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, model.head.out_features)
