"""The Train page's form: widgets seeded from ``default_config`` that build a ``TrainConfig``.

Widget values live in session state under ``train_*`` keys. They are (re)seeded from the library's
defaults whenever the dataset or task changes, so the form always starts from values sized for the
chosen dataset, and the user's edits stick until then.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from sslviz.core import devices
from sslviz.core.errors import UserError
from sslviz.models.encoders import ENCODERS
from sslviz.pretext import TASKS
from sslviz.store import Dataset, Store
from sslviz.training.batches import split_preview
from sslviz.training.config import TrainConfig, default_config
from sslviz.training.expected_time import expected_time
from sslviz.ui.runs_view import human_duration

TASK_BLURBS = {
    "rotation": "Predict which of 0/90/180/270° an image was rotated by (Gidaris et al., 2018). "
    "Fast, and a good first try.",
    "colorization": "Predict the colours (ab of CIE Lab) from the lightness L (Zhang et al., "
    "2016). Needs colour images.",
    "jigsaw": "Put 3×3 shuffled tiles back in order (Noroozi & Favaro, 2016). Needs larger "
    "images (64 px by default) and more time.",
    "multi": "All three at once on one encoder (Doersch & Zisserman, 2017): each loss divided "
    "by its value at chance, so nothing to weigh. About 1.5× a rotation step's time.",
}
JIGSAW_SET_SIZES = (30, 100, 1000)
COLORIZATION_LOSSES = {"classification": "classification (vivid)", "l2": "L2 regression (greyish)"}
DEFAULT_BUDGET = 300.0
HOLDOUT_CHOICES = {
    "auto": "auto",
    "folder": "whole folders",
    "image": "single images",
}
# Labels and help for the generic options (the others have their own widgets below).
OPTION_TEXT = {
    "flip": ("Random horizontal flips", "Augment by mirroring images left-right."),
    "crop": (
        "Random crops: least share of the area",
        "Each image is a random square crop of at least this share of its area, resized back "
        "(1 = no crops), so the features must describe what is shown wherever it sits.",
    ),
    "jitter": (
        "Colour jitter",
        "Brightness, contrast and saturation each scaled by up to ± this (0 = none).",
    ),
    "grey": ("Share of images turned grey", "Takes colour away as a cue (0 = never)."),
    "grey_p": (
        "Share of tiles turned grey",
        "Greying some tiles keeps the model from solving the puzzle by chromatic aberration "
        "instead of shapes (Noroozi & Favaro).",
    ),
}
# Reset when the dataset or task changes; the others (device, seed, budget) stick.
_SIZED_KEYS = (
    "encoder",
    "image_size",
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "weight_decay",
    "warmup_epochs",
    "holdout",
    "holdout_by",
)


def _seed_state(dataset: Dataset, task: str) -> TrainConfig:
    """Put the defaults for (dataset, task) into the widgets' session state where due."""
    defaults = default_config(dataset, task)
    changed = st.session_state.get("train_defaults_for") != (dataset.id, task)
    values: dict[str, Any] = {f"train_{k}": getattr(defaults, k) for k in _SIZED_KEYS}
    values |= {
        "train_device": defaults.device,
        "train_seed": defaults.seed,
        "train_use_budget": defaults.time_budget is not None,
        "train_budget": float(defaults.time_budget or DEFAULT_BUDGET),
    }
    options = {**TASKS[task].defaults, **defaults.task_options}
    values |= {f"train_opt_{task}_{name}": value for name, value in options.items()}
    for key, value in values.items():
        # Streamlit drops a widget's state when another page is shown: refill what's missing.
        sized = key.removeprefix("train_") in _SIZED_KEYS or key.startswith("train_opt_")
        if key not in st.session_state or (changed and sized):
            st.session_state[key] = value
    st.session_state["train_defaults_for"] = (dataset.id, task)
    return defaults


def _option_widget(task: str, name: str, default: Any) -> Any:
    """One task option: the known ones get a fitting widget, any other one a generic input."""
    key = f"train_opt_{task}_{name}"
    if task in ("jigsaw", "multi") and name == "permutations":
        return st.selectbox(
            "Permutation set size",
            JIGSAW_SET_SIZES,
            key=key,
            help="How many tile orders the model chooses between (chosen for maximal Hamming "
            "distance). More is harder and learns more; 100 is the paper's sweet spot.",
        )
    if task == "colorization" and name == "loss":
        return st.radio(
            "Loss",
            list(COLORIZATION_LOSSES),
            key=key,
            horizontal=True,
            format_func=COLORIZATION_LOSSES.get,
            help="Classification over quantized ab bins with class rebalancing gives vivid "
            "colours; L2 regression tends to the mean colour (greyish). Keep L2 to compare.",
        )
    if task == "colorization" and name == "temperature":
        return st.slider(
            "Annealed-mean temperature",
            0.01,
            1.0,
            key=key,
            step=0.01,
            help="Decoding temperature T: 1 is the plain mean (greyish), near 0 the mode "
            "(vivid but patchy); the paper uses 0.38. Only used with the classification loss.",
        )
    label, help = OPTION_TEXT.get(name, (name.replace("_", " ").capitalize(), None))
    if isinstance(default, bool):
        return st.checkbox(label, key=key, help=help)
    if isinstance(default, int):
        return int(st.number_input(label, step=1, key=key, help=help))
    if isinstance(default, float):
        return float(st.number_input(label, key=key, format="%g", step=0.05, help=help))
    return st.text_input(label, key=key, help=help)


def train_form(dataset: Dataset, task: str, store: Store) -> TrainConfig:
    """Render the form for ``task`` on ``dataset``; the config it describes."""
    _seed_state(dataset, task)
    left, middle, right = st.columns(3)
    with left:
        model = _model_widgets()
    with middle:
        schedule = _schedule_widgets()
    with right:
        options = _task_option_widgets(task)
    with st.expander("Advanced"):
        advanced = _advanced_widgets()
    config = TrainConfig(
        dataset=dataset.name,
        task=task,
        **model,
        **schedule,
        **advanced,
        task_options=options,
    )
    _describe_the_run(store, dataset, config)
    return config


def _model_widgets() -> dict[str, Any]:
    """The encoder, the image size and the device (TrainConfig fields)."""
    st.markdown("**Model**")
    encoder = st.selectbox(
        "Encoder",
        list(ENCODERS),
        key="train_encoder",
        help="small-cnn suits 32–64 px images; resnet18 is larger.",
    )
    image_size = st.number_input(
        "Image size (px)",
        min_value=8,
        max_value=512,
        step=8,
        key="train_image_size",
        help="Images are decoded once to this square size; smaller trains faster.",
    )
    available = devices.available_devices()
    device = st.selectbox(
        "Device",
        ["auto", *available],
        key="train_device",
        format_func=lambda d: (
            f"auto ({devices.resolve_device('auto')})" if d == "auto" else devices.device_label(d)
        ),
    )
    note = devices.device_note()
    if note:
        st.caption(f"Only the CPU is offered: {note}.")
    return {"encoder": encoder, "image_size": int(image_size), "device": device}


def _schedule_widgets() -> dict[str, Any]:
    """Epochs, the time budget, the batch size and the learning rate (TrainConfig fields)."""
    st.markdown("**Schedule**")
    epochs = st.number_input("Epochs", min_value=1, max_value=10_000, step=1, key="train_epochs")
    use_budget = st.checkbox(
        "Stop after a time budget",
        key="train_use_budget",
        help="Training ends cleanly (checkpoint, evaluation, finished) after this many "
        "seconds of training, even if epochs remain — handy to compare tasks at equal cost.",
    )
    budget = st.number_input(
        "Time budget (s)",
        min_value=1.0,
        step=30.0,
        format="%.0f",
        key="train_budget",
        disabled=not use_budget,
    )
    batch_size = st.number_input(
        "Batch size", min_value=1, max_value=4096, step=8, key="train_batch_size"
    )
    lr = st.number_input(
        "Learning rate",
        min_value=1e-6,
        max_value=10.0,
        step=1e-4,
        format="%.1e",
        key="train_lr",
    )
    return {
        "epochs": int(epochs),
        "time_budget": float(budget) if use_budget else None,
        "batch_size": int(batch_size),
        "lr": float(lr),
    }


def _task_option_widgets(task: str) -> dict[str, Any]:
    """The task's own options, by name."""
    st.markdown(f"**{task.capitalize()} options**")
    options = {
        name: _option_widget(task, name, default) for name, default in TASKS[task].defaults.items()
    }
    if not options:
        st.caption("This task has no options.")
    return options


def _advanced_widgets() -> dict[str, Any]:
    """The optimizer and its settings, the seed and what is held out (TrainConfig fields)."""
    a, b, c = st.columns(3)
    optimizer = a.selectbox("Optimizer", ["adamw", "sgd"], key="train_optimizer")
    weight_decay = b.number_input(
        "Weight decay", min_value=0.0, step=1e-4, format="%g", key="train_weight_decay"
    )
    warmup = c.number_input(
        "Warm-up epochs", min_value=0.0, step=0.5, format="%g", key="train_warmup_epochs"
    )
    seed = a.number_input("Seed", min_value=0, step=1, key="train_seed")
    holdout = b.number_input(
        "Held-out fraction",
        min_value=0.1,
        max_value=0.9,
        step=0.05,
        format="%.2f",
        key="train_holdout",
        help="Never trained on; the run is evaluated on it at the end.",
    )
    holdout_by = c.radio(
        "Held out",
        list(HOLDOUT_CHOICES),
        key="train_holdout_by",
        format_func=HOLDOUT_CHOICES.get,
        help="Whole folders: a folder of crops or frames of one scene is never on both "
        "sides. Single images: drawn at random from every folder. Auto: whole folders when "
        "there are enough of them that no one folder decides the verdict, else the last "
        "images (by name) of every folder.",
    )
    return {
        "optimizer": optimizer,
        "weight_decay": float(weight_decay),
        "warmup_epochs": float(warmup),
        "seed": int(seed),
        "holdout": float(holdout),
        "holdout_by": str(holdout_by),
    }


def _describe_the_run(store: Store, dataset: Dataset, config: TrainConfig) -> None:
    """What the config trains on, what it holds out, how many steps and the expected time (or
    why the split can't be made)."""
    try:
        split = split_preview(store, dataset.id, config)
    except UserError as error:
        st.error(str(error))
        return
    steps = max(1, split.n_train // max(config.batch_size, 1)) * config.epochs
    budget = config.time_budget
    st.caption(
        f"{split.n_train:,} training images · held out: {split.words} · about {steps:,} steps "
        f"of {config.batch_size} images"
        + (f", or {budget:.0f} s of training if that comes first" if budget is not None else "")
    )
    expected = expected_time(store, config, split.n_train)
    if expected is not None:
        st.markdown(
            f"**Expected time: about {human_duration(expected.seconds)}** ({expected.source})"
        )
