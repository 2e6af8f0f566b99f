"""The labeling page's predictions: the session's embedding and map, the estimate with its
interval (or "too few labels to estimate"), the CV confusion matrix, predictions on the map
(colour = prediction, opacity = confidence), a gallery per predicted label where picking a label
fixes a mistake, the labeled images whose out-of-fold prediction disagrees ("check these
labels"), and the downloads (the "label these next" queue: ``labeling_queue``).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from sslviz.fewshot.export import labels_csv, parquet_bytes, predictions_csv
from sslviz.fewshot.predict import PredictResult
from sslviz.maps import embed
from sslviz.maps.embedding_job import runs_inline
from sslviz.store import Dataset, Store
from sslviz.store.rows import Session
from sslviz.ui import background_maps, background_requests
from sslviz.ui.explorer_view import LoadedMap, MapSpec, get_map
from sslviz.ui.labeling_view import thumbnails_with_buttons
from sslviz.ui.map import categorical_colours, colour_legend, map_figure
from sslviz.ui.widgets import user_errors

PER_LABEL = 12  # thumbnails per predicted label (least confident first)
METHOD_NAMES = {
    "logreg": "logistic regression",
    "knn": "weighted kNN",
    "label-spreading": "label spreading",
    "umap-logreg": "logistic regression in a UMAP",
    "umap-spreading": "label spreading in a UMAP",
    "self-training": "self-training",
    "ensemble": "ensemble (logistic regression + UMAP)",
    "poisson": "Poisson learning on neighbour graphs",
}


def session_map(
    store: Store, dataset: Dataset, session: Session, emb: Any | None
) -> LoadedMap | None:
    """The session source's map and embedding (a small dataset's once its embedding is there,
    ``session_embeddings``; a large one's from a background job offered with its progress, as
    on the Explorer page)."""
    if emb is None and runs_inline(dataset.n_images):
        return None  # being embedded in the background (never in this script)
    return get_map(
        store,
        dataset,
        MapSpec(session.source, session.layer, session.grid),
        key=f"lb_map_{session.id}",
    )


def session_label_array(store: Store, session: Session, loaded: LoadedMap) -> np.ndarray:
    """The session's label of every map point ("" where unlabeled)."""
    given = store.sessions.label_of(session.id)
    return np.array([given.get(int(i), "") for i in loaded.points.image_ids], dtype=object)


def session_embeddings(store: Store, dataset: Dataset, session: Session) -> Any | None:
    """The session source's embedding once it is cached, else None after saying how it comes:
    a small dataset is embedded in the background (its progress shown), a large one by the map
    job the Label tab offers."""
    with user_errors():
        if runs_inline(dataset.n_images):
            return background_requests.embedding_or_progress(
                store, dataset, session.source, session.layer, session.grid, key=f"lb_{session.id}"
            )
        args = {"layer": session.layer, "grid": session.grid}
        found = embed.cached_embeddings(store, dataset, session.source, **args)
        if found is None:
            st.info(
                "This source's embedding is not computed yet: compute the map below (it embeds "
                "every image); suggestions and predictions appear when it is done.",
                icon=":material/schedule:",
            )
        return found
    return None


def predictions(store: Store, session: Session, emb: Any, method: str) -> PredictResult | None:
    """The session's predictions from its labels, computed in the background (never in this
    script): the newest there is, with "updating…" while newer ones are computed."""
    given = store.sessions.labels(session.id)
    labels = {label.path: label.label for label in given}
    suggested = tuple(sorted(label.path for label in given if label.suggested))
    if len(set(labels.values())) < 2:
        st.info(
            "Label images with at least two different labels to see predictions for the rest.",
            icon=":material/info:",
        )
        return None
    # meanwhile without the UMAP methods: the page never fits a UMAP in its script
    umap = background_maps.coords_ready(store, emb, method, labels)
    with user_errors():
        return background_requests.session_predictions(
            store, session, emb, method, labels, suggested, umap=umap
        )
    return None


# --- the estimate -----------------------------------------------------------------------------------
def majority_rate(estimate: Any, labels: dict[str, str]) -> float | None:
    """The share of the largest class among the labels: what always answering it would score
    (the estimate's own ``majority_rate`` where the library gives one)."""
    given = getattr(estimate, "majority_rate", None)
    if given is not None:
        return float(given)
    if not labels:
        return None
    counts: dict[str, int] = {}
    for name in labels.values():
        counts[name] = counts.get(name, 0) + 1
    return max(counts.values()) / len(labels)


def chosen_by_suggestions(estimate: Any) -> bool:
    """Whether most labels came from the suggestions (``Estimate.actively_chosen``): CV on
    actively chosen labels is optimistic."""
    return bool(getattr(estimate, "actively_chosen", False))


def plain_warning(text: str) -> str:
    """A library warning in the page's words: no CSV column names, no CLI commands."""
    text = re.sub(r"\s*\(covered\s*=\s*false\)", "", text)
    text = text.replace("sslviz suggest lists", "the “label these next” queue shows")
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


def chosen_note(store: Store, session: Session, result: PredictResult) -> str | None:
    """ "chosen on these labels ..." where the leaderboard switched the session to its source."""
    from sslviz.fewshot.leaderboard_choice import choice_note

    return choice_note(store, session, result.labels)


def estimate_panel(result: PredictResult, chosen: str | None = None) -> None:
    """The estimate, its interval and the majority-class rate; ``chosen``: the session's source
    was picked on these labels (``leaderboard_choice.choice_note``), said beside the number."""
    e = result.estimate
    majority = majority_rate(e, result.labels)
    beside = f"majority class {majority:.0%}" if majority is not None else None
    left, right = st.columns([1, 2])
    with left:
        if e.too_few:
            st.metric("Estimated accuracy", "too few labels", border=True)
        else:
            low, high = e.cv_interval
            st.metric(
                "Estimated accuracy",
                f"{e.cv_accuracy:.0%}",
                border=True,
                help=f"95% Wilson interval {low:.0%}–{high:.0%} over {e.held_out} "
                "cross-validated labels",
            )
        if beside:
            st.caption(f"Chance: {beside} (always answering the most common label scores that).")
    with right:
        if e.too_few:
            st.markdown(
                f"**Too few labels to estimate** how good these predictions are: "
                f"{e.reason.split(': ', 1)[1]}."
            )
        else:
            low, high = e.cv_interval
            corrected = (
                f", lowered by {e.selection_correction:.0%} for choosing among "
                f"{len(result.estimates)} methods on the same labels"
                if e.selection_correction
                else ""
            )
            st.markdown(
                f"**{e.cv_accuracy:.0%}** of the labeled images were predicted right when held out "
                f"(95% interval **{low:.0%}–{high:.0%}**, {e.held_out} images, 5-fold "
                f"cross-validation{corrected}; {beside}). It speaks for the "
                f"{int(result.covered.sum()):,} images that look like a labeled group; with few "
                "labels it is noisy."
            )
            if chosen:
                st.caption(f":material/warning: Source {chosen}.")
            if chosen_by_suggestions(e):
                st.caption(
                    ":material/warning: Most labels were chosen by the suggestions: CV is "
                    "optimistic on labels picked where the model was unsure or typical."
                )
        st.caption(
            f"Method: {METHOD_NAMES.get(result.method, result.method)} — {result.reason}. "
            f"{int((~result.labeled).sum()):,} images predicted."
        )
    warning = result.coverage.warning()
    if warning:
        st.warning(plain_warning(warning), icon=":material/warning:")
    if len(result.estimates) > 1 and not e.too_few:
        rows = [
            {
                "method": METHOD_NAMES.get(x.method, x.method),
                "CV accuracy": x.cv_accuracy,
                "interval": f"{x.cv_interval[0]:.2f}–{x.cv_interval[1]:.2f}",
                "used": "✓" if x.method == result.method else "",
            }
            for x in result.estimates
        ]
        st.dataframe(
            rows,
            hide_index=True,
            key="lb_estimates",
            column_config={"CV accuracy": st.column_config.NumberColumn(format="%.3f")},
        )


def confusion_figure(result: PredictResult) -> go.Figure | None:
    e = result.estimate
    if e.too_few or e.confusion is None:
        return None
    names = e.classes
    figure = go.Figure(
        go.Heatmap(
            z=e.confusion,
            x=names,
            y=names,
            colorscale="Blues",
            text=e.confusion,
            texttemplate="%{text}",
            showscale=False,
            hovertemplate="given %{y}, predicted %{x}: %{z}<extra></extra>",
        )
    )
    figure.update_layout(
        height=120 + 28 * len(names),
        margin={"l": 8, "r": 8, "t": 30, "b": 8},
        title={"text": "Cross-validation: given (rows) vs predicted", "font": {"size": 13}},
        yaxis={"autorange": "reversed"},
        xaxis={"side": "bottom"},
    )
    return figure


def prediction_map(
    loaded: LoadedMap, result: PredictResult, colour_of: dict[str, str] | None = None
) -> None:
    """The map coloured by prediction (given labels for labeled images), faint where unsure;
    ``colour_of`` the session's label colours (``label_colours.session_colours``)."""
    by_id = {int(i): k for k, i in enumerate(result.image_ids)}
    rows = np.array([by_id.get(int(i), -1) for i in loaded.points.image_ids])
    labels = np.where(rows >= 0, result.final_labels[rows], "")
    confidence = np.where(rows >= 0, result.final_confidence[rows], 0.0)
    st.markdown("**Predictions on the map** — colour: predicted (or given) label; faint: unsure")
    colour = categorical_colours(
        labels,
        title="predicted label (faint = unsure)",
        colour_of=colour_of,
    )
    figure = map_figure(loaded.points, colour=colour, height=520)
    figure.data[0].marker.opacity = (0.12 + 0.88 * confidence).astype(np.float32)
    st.plotly_chart(figure, key="lb_pred_map", config={"displaylogo": False})
    colour_legend(colour)


def per_label_gallery(store: Store, session: Session, result: PredictResult) -> None:
    """Unlabeled images of one predicted label at a time, least confident first: click one to
    give it the label picked above (a fix becomes a label)."""
    classes = result.prediction.classes
    unlabeled = ~result.labeled
    counts = {c: int(((result.prediction.labels == c) & unlabeled).sum()) for c in classes}
    name = st.segmented_control(
        "Predicted as",
        classes,
        default=classes[0],
        format_func=lambda c: f"{c} ({counts[c]:,})",
        key=f"lb_fix_of_{session.id}",
    )
    if name is None:
        return
    rows = np.flatnonzero((result.prediction.labels == name) & unlabeled)
    rows = rows[np.argsort(result.prediction.confidence[rows])][:PER_LABEL]
    if not len(rows):
        st.caption("No unlabeled image is predicted as this.")
        return
    st.caption(
        f"The {len(rows)} least sure predictions of “{name}”. Wrong? Pick the right label "
        "above and click the image: it becomes a label."
    )
    conf = [f"{result.prediction.confidence[r]:.0%} sure" for r in rows]
    thumbnails_with_buttons(store, session, result.image_ids[rows], key="lb_fix", captions=conf)


def check_labels(store: Store, session: Session, result: PredictResult) -> None:
    """Labeled images whose out-of-fold prediction disagrees with the given label."""
    e = result.estimate
    if e.too_few:
        return
    labeled = np.flatnonzero(result.labeled)
    given = [result.labels[result.paths[i]] for i in labeled]
    odd = [(i, g, o) for i, g, o in zip(labeled, given, e.out_of_fold, strict=True) if o and o != g]
    st.markdown(
        f"**Check these labels** ({len(odd)}): held out, the model predicted something "
        "else. Often a slip of the mouse — or a genuinely ambiguous image."
    )
    if odd:
        ids = [result.image_ids[i] for i, _, _ in odd]
        thumbnails_with_buttons(
            store, session, ids, key="lb_check", captions=[f"CV says {o}" for _, _, o in odd]
        )


def downloads(
    store: Store, dataset: Dataset, result: PredictResult, emb: Any, loaded: LoadedMap | None
) -> None:
    coords = None
    if loaded is not None:
        by_id = {int(i): k for k, i in enumerate(loaded.points.image_ids)}
        order = np.array([by_id.get(int(i), 0) for i in result.image_ids])
        coords = np.stack([loaded.points.x[order], loaded.points.y[order]], axis=1)
    a, b, c = st.columns(3)
    a.download_button(
        "Predictions CSV",
        data=lambda: predictions_csv(result),
        mime="text/csv",
        file_name=f"{dataset.name}-predictions.csv",
        key="lb_dl_predictions",
        on_click="ignore",  # a download changes nothing on the page: no rerun
        icon=":material/download:",
        type="primary",
        width="stretch",
    )
    b.download_button(
        "Labels CSV",
        data=lambda: labels_csv(result),
        mime="text/csv",
        file_name=f"{dataset.name}-labels.csv",
        key="lb_dl_labels",
        on_click="ignore",  # a download changes nothing on the page: no rerun
        icon=":material/download:",
        width="stretch",
    )
    c.download_button(
        "Everything (parquet)",
        data=lambda: parquet_bytes(result, emb.vectors, coords),
        file_name=f"{dataset.name}-session.parquet",
        key="lb_dl_parquet",
        on_click="ignore",  # a download changes nothing on the page: no rerun
        mime="application/octet-stream",
        icon=":material/download:",
        width="stretch",
        help="One row per image: embedding, map x/y, given label, prediction, "
        "confidence and class probabilities.",
    )
