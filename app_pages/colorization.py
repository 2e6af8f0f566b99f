"""Colorization results: grey input / vivid / faithful / truth on held-out images, both decodes'
PSNR against the grey baseline, colourfulness, a live temperature slider for the vivid decode,
and L2 vs classification side by side."""

import streamlit as st

from sslviz.results.colorization_answers import is_classification
from sslviz.ui.colorization_view import (
    loss_of,
    partners,
    results_of,
    side_by_side,
    temperature_section,
)
from sslviz.ui.heldout_view import heldout_summary
from sslviz.ui.resources import get_store
from sslviz.ui.results_view import loaded_model, result_page
from sslviz.ui.runs_view import run_label
from sslviz.ui.widgets import user_errors

store = get_store()
run, loaded, metrics = result_page(
    store,
    "colorization",
    title="Colorization results",
    blurb="The model sees only the lightness of a held-out image and paints in the colour "
    "(Zhang et al. 2016). *Vivid* colours are meant to look plausible; *faithful* colours are "
    "meant to be right, and stay grey where the model can't tell. If a decode's PSNR beats the "
    "grey image's, it adds colour that is really there.",
    key="col_run",
)
with user_errors():
    default_t = float(loaded.task.options.get("temperature", 0.38))
    classification = is_classification(loaded.task)

    heldout_summary(metrics, step=loaded.step)
    calibrated = bool(metrics.get("faithful_calibrated"))
    st.caption(
        f"Held-out means, as `sslviz eval {run.id}` reports them"
        + (
            f" (vivid: annealed mean at T = {default_t:g})."
            if classification
            else " (vivid: L2 regression)."
        )
        + (
            " Faithful: calibrated on training images kept out of training (temperature, "
            "the rarity reweighting undone where that measured better) and shrunk toward grey "
            "where the model is unsure."
            if calibrated
            else " Faithful: not calibrated (a run from before calibration existed): the plain "
            "mean with the rarity reweighting undone."
        )
        + " Colourfulness: Hasler & Süsstrunk; grey is 0."
    )

    temperature_section(store, run, default_t, classification)

    others = partners(store, run, loaded)
    st.subheader("L2 regression vs classification")
    if not others:
        kind = "L2" if classification else "classification"
        st.caption(
            f"Train a colorization run with the {kind} loss on the same dataset to compare them "
            "here, image by image (Train page, colorization options)."
        )
    else:
        names = {d.id: d.name for d in store.datasets.list()}
        by_id = {r.id: r for r in others}
        other = by_id[
            st.selectbox(
                "Compare with",
                list(by_id),
                key="col_compare",
                format_func=lambda i: run_label(by_id[i], names),
            )
        ]
        theirs = loaded_model(store, other, "colorization")
        mine_all = results_of(store, run)  # at the run's temperature (stored when it ended)
        theirs_all = results_of(store, other, images_of=run)
        a, b = mine_all.summary(), theirs_all.summary()
        labels = (f"#{run.id} {loss_of(loaded)}", f"#{other.id} {loss_of(theirs)}")
        cols = st.columns(3)
        cols[0].metric(f"PSNR {labels[0]}", f"{a['psnr']:.2f} dB")
        cols[1].metric(f"PSNR {labels[1]}", f"{b['psnr']:.2f} dB")
        cols[2].metric("PSNR grey", f"{a['psnr_grey']:.2f} dB")
        if (other.config.get("seed"), other.config.get("holdout")) != (
            run.config.get("seed"),
            run.config.get("holdout"),
        ):
            st.caption(
                f"These are run #{run.id}'s held-out images; run #{other.id} split the dataset "
                "differently and may have trained on some of them."
            )
        side_by_side(mine_all, theirs_all, labels, key="col_compare_page")
