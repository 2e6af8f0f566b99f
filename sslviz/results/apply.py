"""A run's pretext model on one image: the live demo and ``sslviz apply``.

    loaded = load_run_model(store, 3)                  # cached by (run, checkpoint version)
    result = apply_image(loaded, read_image("cat.jpg"))
    result.to_json()   # {"run", "task", "seconds", ...task keys (DESIGN 3.2)}
    result.panels      # the pictures the demo page and ``--out`` show

The image is decoded exactly as ingestion decodes it (``sslviz.data.decode``: EXIF orientation,
first frame, any mode to RGB) and squared as the decoded cache squares it (shorter side resized,
centre crop), at the run's training size. ``seconds`` is the model's time alone (loaded, warm).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from sslviz.core.errors import UserError
from sslviz.data.decode import Rejected, decode, fit_square
from sslviz.data.sources import MAX_FILE_BYTES
from sslviz.models.checkpoint import checkpoint_path
from sslviz.pretext import PretextModel, PretextTask
from sslviz.pretext.colorization import colourfulness, psnr, without_colour
from sslviz.pretext.jigsaw import board, shuffled_and_reassembled
from sslviz.results.colorization_answers import is_classification, with_colours_of
from sslviz.results.jigsaw_answers import display_tiles
from sslviz.results.rotation_answers import angle, rotation_probabilities, turned
from sslviz.store import Run, Store
from sslviz.training.config import TrainConfig
from sslviz.training.evaluate import load_model

DISPLAY_SIDE = 256  # px of the pictures shown (the model sees the training size)
CACHED_MODELS = 4
COLOUR_MIN = 2.0  # colourfulness under which an input counts as grey (no truth to compare)


# --- the model of a run, loaded once ---------------------------------------------------------
@dataclass(frozen=True)
class LoadedModel:
    run: Run  # the row as it was when loaded
    task: PretextTask
    model: PretextModel  # eval mode, CPU
    config: TrainConfig
    step: int  # the checkpoint's training step
    version: int  # the checkpoint file's modification time (ns): a newer checkpoint, a new key

    def head(self, name: str) -> LoadedModel:
        """A multi-task run's head ``name`` as a run of that task would load: the single task
        and its model over the shared encoder (any other run: itself)."""
        heads = getattr(self.task, "heads", None)
        if heads is None:
            return self
        if name not in heads:
            raise UserError(f"a multi-task run has the heads {', '.join(heads)}, not {name!r}")
        return replace(self, task=heads[name], model=self.model.heads[name])


def checkpoint_version(store: Store, run_id: int) -> int:
    """A number that changes whenever the run writes a new checkpoint (0: none yet)."""
    path = checkpoint_path(store.workspace.run_dir(run_id))
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def load_run_model(store: Store, run_id: int) -> LoadedModel:
    """A run's pretext model from its latest checkpoint (a running run's too), uncached.
    UserError if the run does not exist or has no checkpoint yet."""
    version = checkpoint_version(store, run_id)
    try:
        task, model, config, checkpoint = load_model(store, run_id)
    except RuntimeError as error:  # load_state_dict: the model's code changed since it was saved
        first = str(error).strip().splitlines()[0][:120]
        raise UserError(
            f"run {run_id}'s checkpoint does not fit this version of sslviz's model ({first}): "
            "train the run again"
        ) from None
    return LoadedModel(
        store.runs.get(run_id), task, model, config, int(checkpoint["step"]), version
    )


_MODELS: OrderedDict[tuple[str, int, int], LoadedModel] = OrderedDict()


def cached_run_model(store: Store, run_id: int) -> LoadedModel:
    """``load_run_model`` cached by (workspace, run, checkpoint version), a few models at most."""
    key = (str(store.workspace.root), run_id, checkpoint_version(store, run_id))
    if key not in _MODELS:
        _MODELS[key] = load_run_model(store, run_id)
        while len(_MODELS) > CACHED_MODELS:
            _MODELS.popitem(last=False)
    _MODELS.move_to_end(key)
    return _MODELS[key]


# --- the image ---------------------------------------------------------------------------------
def read_image(source: bytes | str | Path, name: str | None = None) -> Image.Image:
    """An image file (path or bytes) as 8-bit RGB, decoded and validated as ingestion does, and
    under its per-file limit (``MAX_FILE_BYTES``: a file past it is never read into memory).
    UserError (one line, with the reason) if it is not a usable image."""
    if isinstance(source, bytes):
        data, label, size = source, name or "the upload", len(source)
    else:
        path = Path(source).expanduser()
        label = name or str(path)
        try:
            with open(path, "rb") as handle:
                # a file that grows (or a device) past its stat size is caught by reading one more
                size = os.fstat(handle.fileno()).st_size
                data = b"" if size > MAX_FILE_BYTES else handle.read(MAX_FILE_BYTES + 1)
                size = max(size, len(data))
        except FileNotFoundError:
            raise UserError(f"{label}: no such file") from None
        except IsADirectoryError:
            raise UserError(f"{label} is a folder: give one image file") from None
        except OSError as error:
            raise UserError(f"{label}: can't read it ({error.strerror})") from None
    if size > MAX_FILE_BYTES:
        raise UserError(
            f"{label} is too large ({size / 1024**2:,.0f} MB; an image may be at most "
            f"{MAX_FILE_BYTES // 1024**2} MB)"
        )
    try:
        return decode(data).rgb
    except Rejected as reason:
        raise UserError(
            f"{label} is not a usable image ({reason}): give a PNG, JPEG, WebP, GIF, BMP or TIFF"
        ) from None


def square(image: Image.Image, size: int) -> Tensor:
    """RGB image -> uint8 (1, 3, size, size), exactly as the cache fits it (``fit_square``)."""
    fitted = fit_square(image, size)
    return torch.from_numpy(np.asarray(fitted, dtype=np.uint8).copy()).permute(2, 0, 1)[None]


_threads_lock = threading.Lock()
_one_thread_calls = 0  # calls inside one_thread() now, in any thread of the process
_threads_before = 1  # torch's thread count when the first of them entered


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread while a call applies a model. One image is too little work to share:
    on a 2-core machine with other work running, two threads wait for each other at every layer
    (measured 0.24 s vs 0.003 s for a rotation model at 32 px).

    Torch's thread count belongs to the whole process (threads started later, such as the next
    Streamlit script run, start with it), so overlapping calls from two sessions share one
    setting: the first call in lowers it, the last call out restores what it was before the
    first; a call can't restore the 1 another call set and leave the server on one thread.
    """
    global _one_thread_calls, _threads_before
    with _threads_lock:
        if _one_thread_calls == 0:
            _threads_before = torch.get_num_threads()
            torch.set_num_threads(1)
        _one_thread_calls += 1
    try:
        yield
    finally:
        with _threads_lock:
            _one_thread_calls -= 1
            if _one_thread_calls == 0:
                torch.set_num_threads(_threads_before)


# --- applying the model ------------------------------------------------------------------------
@dataclass(frozen=True)
class Panel:
    """One picture of the result, with what to read under it."""

    title: str
    image: Tensor  # uint8 (3, H, W)
    caption: str = ""
    ok: bool | None = None  # green (right) / red (wrong) / neither


@dataclass(frozen=True)
class Applied:
    run: int
    task: str
    step: int  # checkpoint step of the model that answered
    seconds: float  # inference time, model loaded and warm
    headline: str  # one sentence: what the model says
    values: dict[str, Any]  # the task's keys of DESIGN 3.2's ``apply`` row
    panels: list[Panel] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "task": self.task,
            "seconds": self.seconds,
            "step": self.step,
            **self.values,
        }


def apply_image(
    loaded: LoadedModel,
    image: Image.Image,
    *,
    temperature: float | None = None,
    seed: int = 0,
    warm_up: bool = True,
) -> Applied:
    """The run's model on one RGB image. ``temperature``: colorization's annealed-mean T (the
    run's own if None); ``seed``: which jigsaw puzzle is cut. ``warm_up`` runs the model once
    untimed first, so ``seconds`` is the steady time of a loaded model, not its first call's."""
    x = square(image, loaded.config.image_size)  # (1, 3, S, S), what the model sees
    loaded = loaded.head("rotation")  # a multi-task run answers with its rotation head
    apply = {"rotation": _rotation, "colorization": _colorization, "jigsaw": _jigsaw}.get(
        loaded.task.name
    )
    if apply is None:
        raise UserError(f"run {loaded.run.id} is a {loaded.run.kind} run: nothing to apply")
    options = {"temperature": temperature, "seed": seed}
    with one_thread():
        if warm_up:
            apply(loaded, x, image, **options)
        start = time.perf_counter()
        headline, values, panels = apply(loaded, x, image, **options)
        seconds = time.perf_counter() - start
    return Applied(loaded.run.id, loaded.task.name, loaded.step, seconds, headline, values, panels)


def _rotation(
    loaded: LoadedModel, x: Tensor, image: Image.Image, **_: Any
) -> tuple[str, dict[str, Any], list[Panel]]:
    shown = square(image, DISPLAY_SIDE)
    probs = rotation_probabilities(loaded.model, x)[0]  # (4 applied turns, 4 angles)
    pred = probs.argmax(dim=1).tolist()
    right = sum(p == k for k, p in enumerate(pred))
    panels = [
        Panel(
            f"turned {angle(k)}",
            turned(shown, k)[0],
            f"model: {angle(p)} ({100 * float(probs[k, p]):.0f}%)",
            p == k,
        )
        for k, p in enumerate(pred)
    ]
    values = {
        "rotation_probabilities": [[round(float(v), 6) for v in row] for row in probs],
        "predicted_angles": [int(a) for a in (torch.tensor(pred) * 90).tolist()],
        "correct": right,
    }
    return f"{right} of 4 turns named right", values, panels


def _colorization(
    loaded: LoadedModel, x: Tensor, image: Image.Image, *, temperature: float | None, **_: Any
) -> tuple[str, dict[str, Any], list[Panel]]:
    t = temperature if is_classification(loaded.task) else None
    colour = loaded.task.colorize(loaded.model, x, temperature=t)  # (1, 3, S, S)
    faithful = loaded.task.colorize(loaded.model, x, faithful=True)  # (1, 3, S, S)
    shown = square(image, DISPLAY_SIDE)
    has_colour = float(colourfulness(x)[0]) >= COLOUR_MIN
    ours, baseline = float(psnr(colour, x)[0]), float(psnr(without_colour(x), x)[0])
    values: dict[str, Any] = {
        "psnr": ours if has_colour else None,
        "psnr_faithful": float(psnr(faithful, x)[0]) if has_colour else None,
        "psnr_grey": baseline if has_colour else None,
        "input_has_colour": has_colour,
        "colourfulness": float(colourfulness(colour)[0]),
        "temperature": t if t is not None else loaded.task.options.get("temperature"),
    }
    panels = [
        Panel("grey input", without_colour(shown)[0], "lightness only"),
        Panel("model", with_colours_of(shown, colour)[0], f"colour predicted at {x.shape[-1]} px"),
    ]
    if has_colour:
        panels.append(Panel("truth", shown[0], "the original"))
        headline = f"PSNR {ours:.1f} dB vs {baseline:.1f} dB for the grey image"
    else:
        headline = "the input has no colour: nothing to compare against"
    return headline, values, panels


def _jigsaw(
    loaded: LoadedModel, x: Tensor, image: Image.Image, *, seed: int, **_: Any
) -> tuple[str, dict[str, Any], list[Panel]]:
    task = loaded.task
    layout = task.eval_layout(x, seed)  # (1 puzzle)
    logits = task.puzzle_logits(loaded.model, x, layout)[0]  # (n,)
    perms = task.permutations.cpu()
    label, pred = int(layout.labels[0]), int(logits.argmax())
    distance = int((perms[label] != perms[pred]).sum())
    top5 = logits.topk(min(5, len(logits))).indices.tolist()
    scale = max(1, DISPLAY_SIDE // x.shape[-1])
    big = square(image, x.shape[-1] * scale)  # cut the shown tiles from a sharper copy
    tiles = display_tiles(big, layout, scale)[0]  # (9, 3, t, t)
    shuffled, reassembled = shuffled_and_reassembled(tiles, perms[label], perms[pred])
    verdict = "solved" if distance == 0 else f"{distance} of 9 tiles misplaced"
    panels = [
        Panel("shuffled tiles", board(shuffled), f"permutation #{label} of {len(perms)}"),
        Panel("model's reassembly", board(reassembled), verdict, distance == 0),
        Panel(
            "original",
            board(display_tiles(big, layout, scale, greyed=False)[0]),
            "tiles in place, in colour",
        ),
    ]
    values = {
        "permutation": perms[label].tolist(),
        "predicted": perms[pred].tolist(),
        "hamming": distance,
        "correct": distance == 0,
        "permutation_index": label,
        "predicted_index": pred,
        "top5": label in top5,
        "confidence": float(logits.softmax(0)[pred]),
    }
    return f"puzzle: {verdict}", values, panels
