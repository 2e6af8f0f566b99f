"""``sslviz apply``: a run's pretext model on one image (what the live demo shows)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sslviz.cli.output import emit_json, output_file
from sslviz.core.errors import UserError
from sslviz.store import Store


def register(subparsers: argparse._SubParsersAction) -> None:
    apply = subparsers.add_parser(
        "apply",
        help="a run's pretext model on one image: rotation probabilities, colorization, "
        "a solved jigsaw puzzle",
    )
    apply.add_argument("run", type=int, metavar="RUN", help="run id (see `sslviz runs`)")
    apply.add_argument("image", metavar="IMAGE", help="an image file (any size or format)")
    apply.add_argument("--out", metavar="FILE.png", help="write the picture the demo page shows")
    apply.add_argument(
        "--temperature",
        type=float,
        metavar="T",
        help="colorization: annealed-mean temperature in (0, 1]; lower is more vivid, 1 is the "
        "mean (default: the run's, 0.38)",
    )
    apply.add_argument(
        "--seed", type=int, default=0, help="jigsaw: which puzzle is cut (default 0)"
    )
    apply.add_argument(
        "--saliency",
        metavar="FILE.png",
        help="write where the model looked (Grad-CAM for the angle or permutation it names; "
        "rotation and jigsaw runs)",
    )
    apply.add_argument(
        "--saliency-layer", metavar="LAYER", help="encoder layer for --saliency (default: deepest)"
    )
    apply.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    apply.set_defaults(handler=apply_run)


def apply_run(args: argparse.Namespace) -> int:
    for flag, value in (("--out", args.out), ("--saliency", args.saliency)):
        if value and Path(value).suffix.lower() != ".png":
            raise UserError(f"{flag} {value}: the picture is a PNG, name it FILE.png")
        output_file(flag, value)
    # torch loads here, not when the CLI starts: `sslviz datasets` must not wait for it
    from sslviz.results.apply import apply_image, cached_run_model, read_image
    from sslviz.results.picture import save_png

    if args.temperature is not None and not 0 < args.temperature <= 1:
        raise UserError(f"--temperature {args.temperature}: use a value in (0, 1], e.g. 0.38")
    image = read_image(args.image)
    store = Store.open()
    loaded = cached_run_model(store, args.run)
    result = apply_image(loaded, image, temperature=args.temperature, seed=args.seed)
    out = save_png(result.headline, result.panels, args.out) if args.out else None
    saliency = None
    if args.saliency:
        from sslviz.results.saliency import saliency_panels

        panels = saliency_panels(loaded, image, seed=args.seed, layer=args.saliency_layer)
        saliency = save_png("where the model looked", panels, args.saliency)
    if args.json:
        emit_json(
            {
                **result.to_json(),
                "out": str(out) if out else None,
                "saliency": str(saliency) if saliency else None,
            }
        )
        return 0
    print(f"run {result.run} ({result.task}, step {result.step}): {result.headline}")
    for key, value in result.values.items():
        print(f"{key}: {value}")
    print(f"seconds: {result.seconds:.4f}")
    if out:
        print(f"picture: {out}")
    if saliency:
        print(f"saliency: {saliency}")
    return 0
