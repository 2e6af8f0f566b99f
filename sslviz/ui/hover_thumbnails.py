"""A thumbnail beside the cursor when it rests on a map's point, as the TensorBoard projector
shows one: the map's plotly chart gains a ``plotly_hover`` listener that shows the image.

    render_map(points, key=..., selection_key=...)
    hover_limit_caption(len(points))                          # under the map
    hover_thumbnails(store, dataset.id, points.image_ids)     # last on the page

How: Streamlit's plotly chart sends no hover events to Python (and a rerun per hover would be far
too slow), so a small script in the page (``st.html``, JavaScript allowed) listens on the chart
itself. It carries the thumbnails of the map's images, each a small JPEG as a data URL keyed by
image id: the chart's ``customdata`` (the ids) names the image under the cursor. Above
``MAX_IMAGES`` points the script would cost more than it helps (megabytes on every rerun), so
the map says so and a selection shows the images instead. The images are built once per map and
cached; the script is idempotent (several maps on a page share one listener set). It is sent once
per browser session and map: what it leaves in the page (the images, the listener that finds new
charts) outlives the element, so a rerun (e.g. every label on the labeling page) sends nothing;
re-sending it cost the server ~30 ms a run (Streamlit dedents the ~1 MB of HTML each time).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image

from sslviz.store import Store
from sslviz.ui.thumbnails import image_lookup

MAX_IMAGES = 2000  # ~1 KB an image at the smallest side: at most ~2.5 MB of script
QUALITY = 75


def side_for(n: int) -> int:
    """Pixels a side of a hover thumbnail: big for a few images, small for many (the script's
    size grows with n x side^2)."""
    return 96 if n <= 500 else 64 if n <= 1000 else 48


def data_url(file: str, side: int) -> str | None:
    """A JPEG data URL of the thumbnail file at most ``side`` px a side (None if unreadable)."""
    try:
        with Image.open(file) as image:
            image.draft("RGB", (side, side))  # a JPEG decodes at a reduced scale: ~2x faster
            image = image.convert("RGB")
            image.thumbnail((side, side), Image.Resampling.BILINEAR)
            out = io.BytesIO()
            image.save(out, "JPEG", quality=QUALITY)
    except OSError:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


@st.cache_data(show_spinner=False, max_entries=8)
def _script(_store: Store, home: str, dataset_id: int, ids_key: bytes) -> str:
    ids = np.frombuffer(ids_key, dtype=np.int64)
    lookup = image_lookup(_store, dataset_id)
    rows = lookup.rows(ids)
    side = side_for(len(rows))
    urls: dict[str, Any] = {}
    for image_id, file in zip(lookup.ids[rows], lookup.thumbs[rows], strict=True):
        url = data_url(str(file), side)
        if url is not None:
            urls[str(int(image_id))] = url
    return SCRIPT.replace("__THUMBS__", json.dumps(urls, separators=(",", ":")))


def hover_thumbnails(store: Store, dataset_id: int, image_ids: np.ndarray) -> None:
    """Show the image under the cursor on the page's maps (up to ``MAX_IMAGES`` points; call it
    once per page, last: the images are built once, after the rest of the page is drawn)."""
    ids = np.unique(np.asarray(image_ids, dtype=np.int64))
    if len(ids) > MAX_IMAGES:
        return
    home = str(store.workspace.root)
    digest = hashlib.blake2b(f"{home}|{dataset_id}|".encode() + ids.tobytes(), digest_size=12)
    sent = f"_hover_sent_{digest.hexdigest()}"
    if st.session_state.get(sent):
        return  # this page already has these images (a reload is a new session)
    script = _script(store, home, dataset_id, ids.tobytes())
    try:
        st.html(script, unsafe_allow_javascript=True)
    except TypeError:  # a Streamlit without scripts in st.html: the maps work without images
        return
    st.session_state[sent] = True


def hover_limit_caption(n_points: int) -> None:
    """Under a map too large for images on hover: says so, and what shows them instead."""
    if n_points > MAX_IMAGES:
        st.caption(
            f"Images on hover are shown for maps of up to {MAX_IMAGES:,} images (this one has "
            f"{n_points:,}): select points to see theirs."
        )


# Runs in the page itself: finds every plotly chart, listens once per chart, and shows the image
# of the hovered point's id in one floating box that never takes the mouse.
SCRIPT = """<script>
(() => {
  const thumbs = (window.sslvizThumbs = window.sslvizThumbs || {});
  Object.assign(thumbs, __THUMBS__);
  let box = document.getElementById("sslviz-hover-thumb");
  if (!box) {
    box = document.createElement("div");
    box.id = "sslviz-hover-thumb";
    box.style.cssText = "position:fixed;display:none;z-index:100000;pointer-events:none;" +
      "background:#fff;border:1px solid #ccc;border-radius:4px;padding:3px;" +
      "box-shadow:0 2px 8px rgba(0,0,0,.25)";
    const img = document.createElement("img");
    img.style.cssText = "display:block;image-rendering:auto";
    box.appendChild(img);
    document.body.appendChild(box);
  }
  const img = box.firstChild;
  const show = (event) => {
    const point = event && event.points && event.points[0];
    const id = point ? point.customdata : undefined;
    const url = id === undefined ? undefined : thumbs[String(Array.isArray(id) ? id[0] : id)];
    if (!url) { box.style.display = "none"; return; }
    img.src = url;
    box.style.display = "block";
    const e = event.event || {};
    // placed by the box's largest size (96 px + border): the image may not have decoded yet
    const x = e.clientX || 0, y = e.clientY || 0, w = 104, h = 104;
    // up and to the left of the cursor (plotly's own label sits to its right), kept on screen
    box.style.left = Math.max(4, x - w - 14) + "px";
    box.style.top = (y - h - 14 >= 4 ? y - h - 14 : y + 14) + "px";
  };
  const hide = () => { box.style.display = "none"; };
  const attach = () => {
    document.querySelectorAll(".js-plotly-plot").forEach((chart) => {
      if (chart.sslvizHover || typeof chart.on !== "function") return;
      chart.sslvizHover = true;
      chart.on("plotly_hover", show);
      chart.on("plotly_unhover", hide);
      chart.addEventListener("mouseleave", hide);
    });
  };
  attach();
  if (!window.sslvizHoverObserver) {
    let queued = false;
    window.sslvizHoverObserver = new MutationObserver(() => {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => { queued = false; attach(); });
    });
    window.sslvizHoverObserver.observe(document.body, { childList: true, subtree: true });
  }
})();
</script>"""
