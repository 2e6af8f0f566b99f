"""Where the model looked: Grad-CAM (Selvaraju et al. 2017) through Captum's ``LayerGradCam``,
for the class a pretext model picks (the angle it names, the permutation it names).

    maps = gradcam(model, inputs, layer="block3")               # (B, H, W), target = argmax
    panels = saliency_panels(loaded, image)                     # the live demo / ``apply --saliency``
    randomisation_check(model, inputs, layer)                   # Adebayo et al. 2018

Grad-CAM weighs a layer's channels by the mean gradient of the class score over the map and sums
them (ReLU'd for display). It is one of the few attributions that pass Adebayo et al.'s model
randomisation test ("Sanity Checks for Saliency Maps", NeurIPS 2018): with the weights
re-initialised the map must change, else it shows the image, not the model.
``randomisation_check`` measures exactly that (Spearman rank correlation of the trained model's
map with the randomised model's, per image; near 0 = the map depends on what was learned).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from sslviz.core.errors import UserError
from sslviz.pretext.base import PretextModel, normalize
from sslviz.pretext.jigsaw import JigsawLayout, board
from sslviz.results.apply import DISPLAY_SIDE, LoadedModel, Panel, square
from sslviz.results.heatmap import overlay
from sslviz.results.jigsaw_answers import display_tiles
from sslviz.results.rotation_answers import angle, turned

SALIENCY_TASKS = ("rotation", "jigsaw")  # tasks whose model picks one class to explain


def default_layer(model: PretextModel) -> str:
    """The deepest layer: Grad-CAM's usual choice (its units see the most, its gradients are the
    least noisy)."""
    return model.encoder.layer_names[-1]


def gradcam(
    model: PretextModel,
    inputs: Tensor,
    *,
    layer: str | None = None,
    target: Tensor | None = None,
    relu: bool = True,
) -> Tensor:
    """Grad-CAM of ``model`` on float ``inputs`` for class ``target`` (B,) (default: the model's
    pick) at encoder ``layer``, resized to the encoder's input: (B', H, W) float, where B' is the
    number of encoder inputs (B for whole images, 9B for jigsaw tiles, in the inputs' order)."""
    from captum.attr import LayerAttribution, LayerGradCam

    layer = model.encoder.check_layer(layer or default_layer(model))
    model.eval()

    def logits(x: Tensor) -> Tensor:
        return model(x)[0]

    if target is None:
        with torch.no_grad():
            target = logits(inputs).argmax(dim=1)
    cam = LayerGradCam(logits, model.encoder.stages[layer])
    with torch.enable_grad():
        maps = cam.attribute(inputs, target=target, relu_attributions=relu)  # (B', 1, h, w)
    side = inputs.shape[-2:]
    return LayerAttribution.interpolate(maps.detach(), tuple(side), "bilinear")[:, 0]


# --- the tasks ---------------------------------------------------------------------------------
def rotation_saliency(
    model: PretextModel, images: Tensor, turns: Tensor, *, layer: str | None = None
) -> Tensor:
    """uint8 images (N, 3, S, S), each turned by ``turns`` (N,) quarter turns -> (N, S, S) maps
    on the turned copy, for the angle the model names."""
    x = torch.stack([turned(img[None], int(k))[0] for img, k in zip(images, turns, strict=True)])
    return gradcam(model, normalize(x), layer=layer)


def jigsaw_saliency(
    task, model: PretextModel, image: Tensor, layout: JigsawLayout, *, layer: str | None = None
) -> Tensor:
    """uint8 image (1, 3, S, S) and its puzzle's layout -> (9, t, t) maps of the shuffled tiles
    (position j of the puzzle), for the permutation the model names."""
    inputs = task.assemble(image, layout).inputs  # (1, 9, C, t, t)
    return gradcam(model, inputs, layer=layer)


def jigsaw_board(
    image: Tensor, layout: JigsawLayout, maps: Tensor, permutation: Tensor, scale: int = 1
) -> Tensor:
    """The shuffled puzzle (tiles as the model saw them) with each tile's map over it: uint8
    (3, side, side). ``image`` (1, 3, S*scale, S*scale); ``maps`` (9, t, t) in shuffled order."""
    tiles = display_tiles(image, layout, scale)[0][permutation]  # (9, 3, t, t) shuffled
    vmax = float(maps.max())
    return board(torch.stack([overlay(t, m, vmax=vmax) for t, m in zip(tiles, maps, strict=True)]))


def saliency_panels(
    loaded: LoadedModel, image: Image.Image, *, seed: int = 0, layer: str | None = None
) -> list[Panel]:
    """Where the run's model looked on one RGB image, as pictures: the four turned copies
    (rotation) or the shuffled puzzle (jigsaw, puzzle ``seed``), each with its Grad-CAM map."""
    loaded = loaded.head("rotation")  # a multi-task run answers with its rotation head (apply)
    task, model = loaded.task.name, loaded.model
    if task not in SALIENCY_TASKS:
        raise UserError(
            f"run {loaded.run.id} is a {task} run: saliency explains the class a model picks, "
            "which rotation and jigsaw runs have; use one of those"
        )
    layer = layer or default_layer(model)
    x = square(image, loaded.config.image_size)  # (1, 3, S, S)
    if task == "rotation":
        maps = rotation_saliency(model, x.expand(4, -1, -1, -1), torch.arange(4), layer=layer)
        shown = square(image, DISPLAY_SIDE)
        return [
            Panel(f"turned {angle(k)}", overlay(turned(shown, k)[0], maps[k]), f"Grad-CAM, {layer}")
            for k in range(4)
        ]
    layout = loaded.task.eval_layout(x, seed)
    maps = jigsaw_saliency(loaded.task, model, x, layout, layer=layer)
    scale = max(1, DISPLAY_SIDE // x.shape[-1])
    big = square(image, x.shape[-1] * scale)
    perm = loaded.task.permutations.cpu()[int(layout.labels[0])]
    up = F.interpolate(maps[:, None], scale_factor=scale, mode="bilinear")[:, 0]
    plain = board(display_tiles(big, layout, scale)[0][perm])
    return [
        Panel("shuffled tiles", plain, "as the model got them"),
        Panel("where it looked", jigsaw_board(big, layout, up, perm, scale), f"Grad-CAM, {layer}"),
    ]


# --- the sanity check --------------------------------------------------------------------------
def randomised(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with every layer's weights re-initialised (Adebayo et al.'s cascading
    randomisation carried to the input: nothing learned is left)."""
    twin = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in twin.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()
    return twin.eval()


def _ranks(x: Tensor) -> Tensor:
    """(B, D) -> (B, D) ranks along D (ties broken by order; fine for continuous maps)."""
    return x.argsort(dim=1).argsort(dim=1).float()


def spearman(a: Tensor, b: Tensor) -> Tensor:
    """Rank correlation of each row of ``a`` with the same row of ``b``, (B, ...) -> (B,).
    A constant map correlates with nothing: 0."""
    ra, rb = _ranks(a.flatten(1)), _ranks(b.flatten(1))
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    denom = ra.norm(dim=1) * rb.norm(dim=1)
    flat = (a.flatten(1).std(1) < 1e-12) | (b.flatten(1).std(1) < 1e-12)
    r = (ra * rb).sum(1) / denom.clamp_min(1e-12)
    return torch.where(flat, torch.zeros_like(r), r)


def randomisation_check(
    model: PretextModel,
    inputs: Tensor,
    *,
    layer: str | None = None,
    explain: Callable[..., Tensor] = gradcam,
    seed: int = 0,
) -> Tensor:
    """Per input, the Spearman rank correlation between the trained model's map and the map of
    the same architecture with re-initialised weights, for the class the trained model picks
    (B',). Low |r| passes: the map depends on the learned weights."""
    with torch.no_grad():
        target = model.eval()(inputs)[0].argmax(dim=1)
    trained = explain(model, inputs, layer=layer, target=target, relu=False)
    random = explain(randomised(model, seed), inputs, layer=layer, target=target, relu=False)
    return spearman(trained, random)
