"""Rotation results image by image: the probabilities of the four angles for every turned copy.

``probabilities[i, k, j]`` is the model's probability that image i, turned by ``k * 90`` degrees
counter-clockwise (``torch.rot90``, as training turns it), was turned by ``j * 90``. Its argmax
over j is exactly the prediction behind ``sslviz eval``'s confusion matrix (row k, column j).

An image is *rotation-ambiguous* when the model spreads its probability over several angles for
its turned copies (a symmetric shape, a texture, a centred blob). Its *sureness* is its mean top
probability over the four copies (chance: 1/4), judged two ways, and the page says both:

- **absolutely**: below ``ABSOLUTE_BELOW`` (50%), the model gives no angle even half its belief.
  A weak model, or a dataset with no "up" (textures), is unsure about most images: every one is
  flagged, and the page says the model is unsure about most images rather than single any out;
- **relative to the model's typical image**: below a share of its median sureness. A strong model
  sure of 95% of images singles out the one at 60%, which the absolute cut would pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sslviz.pretext.base import PretextModel, model_device, normalize
from sslviz.pretext.rotation import ANGLES, rotate_all

# An image is ambiguous when its sureness is below this share of the model's median sureness...
AMBIGUOUS_BELOW = 0.6
# ... or below this sureness in absolute terms (no angle gets even half the model's belief).
ABSOLUTE_BELOW = 0.5


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

    def ambiguous(
        self, below: float = AMBIGUOUS_BELOW, absolute: float = ABSOLUTE_BELOW
    ) -> list[int]:
        """Indices of rotation-ambiguous images, most ambiguous first: their sureness is below
        ``absolute``, or below ``below`` times the model's typical sureness."""
        return self.ambiguity(below, absolute).images

    def ambiguity(
        self, below: float = AMBIGUOUS_BELOW, absolute: float = ABSOLUTE_BELOW
    ) -> Ambiguity:
        """The ambiguous images, and which of the two cuts flagged each."""
        top = self.top_probability()
        typical = self.typical_sureness()
        cut = below * typical
        order = torch.argsort(top, stable=True).tolist()
        images = [i for i in order if float(top[i]) < max(absolute, cut)]
        return Ambiguity(
            images=images,
            absolute=sum(float(top[i]) < absolute for i in images),
            relative=sum(float(top[i]) < cut for i in images),
            total=len(top),
            typical=typical,
            absolute_cut=absolute,
            relative_cut=cut,
        )


@dataclass(frozen=True)
class Ambiguity:
    """Rotation-ambiguous images under the two cuts (see the module docstring)."""

    images: list[int]  # flagged by either cut, least sure first
    absolute: int  # how many are below the absolute cut
    relative: int  # how many are below the cut relative to the typical image
    total: int  # images judged
    typical: float  # the model's median sureness
    absolute_cut: float
    relative_cut: float

    @property
    def model_unsure(self) -> bool:
        """The model is unsure about most images: that says more about the model (or a dataset
        with no "up") than about any one image."""
        return self.total > 0 and self.absolute > self.total / 2


def turned(images: Tensor, turn: int) -> Tensor:
    """uint8 (N, 3, S, S) -> the same images turned by ``turn * 90`` degrees counter-clockwise."""
    return torch.rot90(images, turn, dims=(2, 3))


def angle(turn: int) -> str:
    return f"{ANGLES[turn]}°"
