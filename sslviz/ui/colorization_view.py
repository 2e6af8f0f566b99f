"""Colorization page pieces: held-out colorizations at a temperature (computed once per
checkpoint and temperature), the paged grey / vivid / faithful / truth gallery, and the
L2-vs-classification comparison on the same images."""

from __future__ import annotations

import streamlit as st

from sslviz.pretext.colorization import without_colour
from sslviz.results import stored
from sslviz.results.apply import LoadedModel, checkpoint_version
from sslviz.results.colorization_answers import (
    ColorizationResults,
    DecodeInputs,
    at_temperature,
    colorization_results,
    decode_inputs,
)
from sslviz.store import Run, Store
from sslviz.ui.results_view import held_out_images, loaded_model, pager, picture

PER_PAGE = 8


@st.cache_resource(show_spinner="Colorizing the held-out images…", max_entries=16)
def _results(
    home: str, run_id: int, version: int, base_run: int, temperature: float | None
) -> ColorizationResults:
    from sslviz.ui.resources import get_store

    store = get_store()
    run = store.runs.get(run_id)
    loaded = loaded_model(store, run, "colorization")
    held = held_out_images(store, store.runs.get(base_run), loaded.config.image_size)
    if base_run == run_id and temperature is None:  # the run's own decodes: stored when it ended
        colour, faithful = stored.colorization_of(store, run, lambda: loaded, held)
        return ColorizationResults(
            held.paths, held.images, without_colour(held.images), colour, faithful, None
        )
    inputs = _decode_inputs(home, run_id, version, base_run)
    if temperature is not None and inputs is not None:  # a slider move: the decode alone
        return at_temperature(_results(home, run_id, version, base_run, None), loaded.task,
                              inputs, temperature)  # fmt: skip
    return colorization_results(
        loaded.task, loaded.model, held.paths, held.images, temperature=temperature
    )


@st.cache_resource(show_spinner="Reading the model's outputs once…", max_entries=4)
def _decode_inputs(home: str, run_id: int, version: int, base_run: int) -> DecodeInputs | None:
    """The model's outputs on the held-out images, kept so a temperature re-decodes only."""
    from sslviz.ui.resources import get_store

    store = get_store()
    loaded = loaded_model(store, store.runs.get(run_id), "colorization")
    held = held_out_images(store, store.runs.get(base_run), loaded.config.image_size)
    return decode_inputs(loaded.task, loaded.model, held.images)


def results_of(
    store: Store, run: Run, temperature: float | None = None, *, images_of: Run | None = None
) -> ColorizationResults:
    """The run's colorizations of the held-out images of ``images_of`` (default: its own)."""
    base = images_of or run
    return _results(
        str(store.workspace.root), run.id, checkpoint_version(store, run.id), base.id, temperature
    )


def loss_of(loaded: LoadedModel) -> str:
    return str(loaded.task.options.get("loss", "classification"))


def partners(store: Store, run: Run, loaded: LoadedModel) -> list[Run]:
    """Colorization runs with a checkpoint on the same dataset with the other loss (L2 vs
    classification), newest first."""
    from sslviz.ui.results_view import pretext_runs

    mine = loss_of(loaded)
    return [
        r
        for r in pretext_runs(store, "colorization")
        if r.dataset_id == run.dataset_id
        and r.id != run.id
        and checkpoint_version(store, r.id)
        and (r.config.get("task_options") or {}).get("loss", "classification") != mine
    ]


def gallery(results: ColorizationResults, *, key: str) -> None:
    """Paged grey input | vivid | faithful | truth, two images per row (each in its own box),
    with each decode's PSNR against the grey baseline's."""
    vivid, faithful, base = results.psnr, results.psnr_faithful, results.psnr_grey
    shown = list(pager(len(results.paths), PER_PAGE, key=key, label="images"))
    for start in range(0, len(shown), 2):
        for box, i in zip(st.columns(2), shown[start : start + 2], strict=False):
            row = box.container(border=True).columns(4)
            row[0].image(picture(results.grey[i]), width="stretch", caption="grey input")
            row[1].image(picture(results.colour[i]), width="stretch", caption="vivid")
            row[2].image(picture(results.faithful[i]), width="stretch", caption="faithful")
            row[3].image(picture(results.truth[i]), width="stretch", caption="truth")
            row[0].markdown(f"grey **{float(base[i]):.1f}** dB")
            row[0].caption(results.paths[i])
            for col, ours in ((row[1], vivid[i]), (row[2], faithful[i])):
                verdict = ":green[beats grey]" if float(ours) > float(base[i]) else ":red[≤ grey]"
                col.markdown(f"**{float(ours):.1f}** dB · {verdict}")


def side_by_side(
    mine: ColorizationResults, other: ColorizationResults, labels: tuple[str, str], *, key: str
) -> None:
    """The same held-out images: grey | this run | the other run | truth, with both PSNRs."""
    shown = list(pager(len(mine.paths), 4, key=key, label="images"))
    for start in range(0, len(shown), 2):
        for box, i in zip(st.columns(2), shown[start : start + 2], strict=False):
            row = box.container(border=True).columns(4)
            row[0].image(picture(mine.grey[i]), width="stretch", caption="grey input")
            row[1].image(picture(mine.colour[i]), width="stretch", caption=labels[0])
            row[2].image(picture(other.colour[i]), width="stretch", caption=labels[1])
            row[3].image(picture(mine.truth[i]), width="stretch", caption="truth")
            row[0].caption(mine.paths[i])
            row[1].markdown(f"PSNR **{float(mine.psnr[i]):.1f}** dB")
            row[2].markdown(f"PSNR **{float(other.psnr[i]):.1f}** dB")


@st.fragment
def temperature_section(store: Store, run: Run, default_t: float, classification: bool) -> None:
    """The temperature slider, the figures at that temperature and the gallery: a fragment, so
    moving the slider re-decodes and redraws this part only (not the page, not the model)."""
    temperature = None
    if classification:
        temperature = st.slider(
            "Temperature of the vivid decode's annealed mean — lower is more vivid, 1 is the plain "
            "mean (greyish); the faithful decode is calibrated and doesn't change",
            0.05,
            1.0,
            default_t,
            0.01,
            key="col_temperature",
        )
        if abs(temperature - default_t) < 1e-9:
            temperature = None
    results = results_of(store, run, temperature)
    if temperature is not None:
        now = results.summary()
        st.info(
            f"At T = {temperature:g}: vivid PSNR {now['psnr']:.2f} dB (faithful "
            f"{now['psnr_faithful']:.2f}, grey {now['psnr_grey']:.2f} dB), colourfulness "
            f"{now['colourfulness']:.1f} — the figures above are at the run's T = {default_t:g}.",
            icon=":material/thermostat:",
        )
    st.subheader(f"Held-out images ({len(results.paths):,})")
    gallery(results, key="col_page")
