"""Rotation results image by image: the probabilities of the four angles for every turned copy.

``probabilities[i, k, j]`` is the model's probability that image i, turned by ``k * 90`` degrees
counter-clockwise (``torch.rot90``, as training turns it), was turned by ``j * 90``. Its argmax
over j is exactly the prediction behind ``sslviz eval``'s confusion matrix (row k, column j).

An image is *rotation-ambiguous* when the model spreads its probability over several angles for
its turned copies (a symmetric shape, a texture, a centred blob) far more than it does for a
typical image: its mean top probability over the four copies is below a share of the model's
median one. Judged against the model's own typical sureness, so a weak model (unsure about
everything) flags no image, and what is flagged tells "this image has no up" apart from "the
model is wrong".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sslviz.pretext.base import PretextModel, model_device, normalize
from sslviz.pretext.rotation import ANGLES, rotate_all

# An image is ambiguous when its sureness is below this share of the model's median sureness.
AMBIGUOUS_BELOW = 0.6


@torch.no_grad()
def rotation_probabilities(model: PretextModel, images: Tensor, batch_size: int = 64) -> Tensor:
    """uint8 (N, 3, S, S) -> float (N, 4, 4): softmax over the 4 angles (last axis) for each of
    the 4 turned copies (middle axis, the applied turn) of every image."""
    model.eval()
    device = model_device(model)
    out = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size].to(device)
        logits, _ = model(rotate_all(normalize(chunk)))  # (4b, 4), rows image-major
        out.append(logits.float().softmax(dim=1).view(-1, 4, 4).cpu())  # (b, 4, 4)
    return torch.cat(out) if out else torch.empty(0, 4, 4)


@dataclass(frozen=True)
class TurnedCopy:
    """One turned copy of a held-out image the model got wrong."""

    image: int  # index into the held-out images
    turn: int  # applied turn class k (k * 90 degrees)
    predicted: int  # the model's class
    confidence: float  # its probability


@dataclass(frozen=True)
class RotationResults:
    paths: list[str]
    images: Tensor  # uint8 (N, 3, S, S), upright (as stored)
    probabilities: Tensor  # (N, 4, 4)

    @property
    def predicted(self) -> Tensor:
        """(N, 4) predicted class of each turned copy."""
        return self.probabilities.argmax(dim=2)

    def confusion(self) -> Tensor:
        """(4, 4) counts, row = applied turn, column = predicted (as ``sslviz eval``)."""
        truth = torch.arange(4).expand(len(self.paths), 4).flatten()
        return torch.bincount(truth * 4 + self.predicted.flatten(), minlength=16).view(4, 4)

    def top_probability(self) -> Tensor:
        """(N,) mean over the 4 turned copies of the model's highest probability (1 = sure)."""
        return self.probabilities.max(dim=2).values.mean(dim=1)

    def misclassified(self) -> list[TurnedCopy]:
        """Every wrong turned copy, most confident first (confidently wrong is most telling)."""
        pred = self.predicted
        conf = self.probabilities.max(dim=2).values
        wrong = (pred != torch.arange(4)).nonzero().tolist()
        copies = [TurnedCopy(i, k, int(pred[i, k]), float(conf[i, k])) for i, k in wrong]
        return sorted(copies, key=lambda c: -c.confidence)

    def typical_sureness(self) -> float:
        """The model's median sureness over the held-out images (``top_probability``)."""
        top = self.top_probability()
        return float(top.median()) if len(top) else 1.0

    def ambiguous(self, below: float = AMBIGUOUS_BELOW) -> list[int]:
        """Indices of rotation-ambiguous images, most ambiguous first: their sureness is below
        ``below`` times the model's typical sureness (never below chance, 1/4, which no image
        can be: a model no better than guessing flags nothing)."""
        top = self.top_probability()
        cut = below * self.typical_sureness()
        order = torch.argsort(top).tolist()
        return [i for i in order if float(top[i]) < cut]


def turned(images: Tensor, turn: int) -> Tensor:
    """uint8 (N, 3, S, S) -> the same images turned by ``turn * 90`` degrees counter-clockwise."""
    return torch.rot90(images, turn, dims=(2, 3))


def angle(turn: int) -> str:
    return f"{ANGLES[turn]}°"


def rotation_results(model: PretextModel, paths: list[str], images: Tensor) -> RotationResults:
    """Per-image results of a rotation model on held-out uint8 images (N, 3, S, S)."""
    return RotationResults(paths, images, rotation_probabilities(model, images))
