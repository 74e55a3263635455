"""``python -m generator flood``: flood (or smog / wildfire) image files from a script.

    python -m generator flood --input IMG [IMG ...] --out DIR [--checkpoint C ...]
        [--event flood|smog|wildfire] [--threshold 0.5] [--size N] [--seed 0] [--device cpu]
        [--format png|jpeg] [--batch-size 8] [--compile] [--json]

``--checkpoint`` is given twice, once per model. Each value is ``masker=PATH``, ``painter=PATH``
or a bare ``PATH`` whose kind is read from the checkpoint file itself (every checkpoint records
whether it is a masker or a painter), so ``--checkpoint m.pt --checkpoint p.pt`` works in either
order. Without ``--checkpoint`` the reference backend floods (see ``generator.reference``).

With ``--json`` every input gives exactly one line on stdout, in input order::

    {"input", "output", "mask", "record", "backend", "model_version", "versions", "event",
     "params", "cache_key", "cached", "batch_size", "timings_ms": {"read", "preprocess",
     "masker", "painter", "postprocess", "total", "write"}}

or ``{"input", "error", "error_type"}`` for an input that failed (missing file, not an image,
unreadable checkpoint). The other inputs are still processed; the exit status is 1 when any
input failed, 0 otherwise (2 for a malformed command line). Results are content-addressed
(see ``generator.service``): running the same command again returns the stored files
(``"cached": true``) without running the models.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from generator.params import EVENTS, OUTPUT_FORMATS, FloodParams
from generator.service import FloodFailure, flood_many, get_pipeline

KINDS = ("masker", "painter")


class CheckpointArgumentError(ValueError):
    """The --checkpoint values do not name exactly one masker and one painter."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m generator flood",
        description="Flood street photos (or add smog / wildfire); writes result and mask files.",
    )
    parser.add_argument("--input", nargs="+", required=True, metavar="IMG", help="source images")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--checkpoint", action="append", default=[], metavar="C",
                        help="masker=PATH, painter=PATH or PATH (kind read from the file); "
                             "give one masker and one painter; none: the reference backend")
    parser.add_argument("--event", choices=EVENTS, default="flood")
    parser.add_argument("--threshold", type=float, default=0.5, help="mask threshold (flood)")
    parser.add_argument("--size", type=int, default=None,
                        help="working size (default: the backend's, 640 for full models)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--format", choices=OUTPUT_FORMATS, default="png", help="result format")
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward pass")
    parser.add_argument("--compile", action="store_true", help="torch.compile the models")
    parser.add_argument("--json", action="store_true", help="one JSON line per input on stdout")
    return parser


def resolve_checkpoints(values: list[str]) -> tuple[str, str]:
    """(masker_path, painter_path) from the --checkpoint values; ("", "") for none."""
    if not values:
        return "", ""
    found: dict[str, str] = {}
    for value in values:
        kind, sep, path = value.partition("=")
        if sep and kind in KINDS:
            chosen = kind
        else:
            path = value
            chosen = _kind_in_file(path)
        if chosen in found:
            raise CheckpointArgumentError(f"two {chosen} checkpoints given: {found[chosen]} and {path}")
        found[chosen] = path
    missing = [kind for kind in KINDS if kind not in found]
    if missing:
        raise CheckpointArgumentError(f"no {' or '.join(missing)} checkpoint given "
                                      "(give both, or none for the reference backend)")
    return found["masker"], found["painter"]


def _kind_in_file(path: str) -> str:
    from generator.checkpoint import load_checkpoint

    try:
        return load_checkpoint(path, verify_hash=False).kind
    except (OSError, ValueError) as error:
        raise CheckpointArgumentError(f"unreadable checkpoint {path}: {error}") from error


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        params = FloodParams(event=args.event, threshold=args.threshold, size=args.size,
                             seed=args.seed, format=args.format)
    except ValueError as error:
        build_parser().error(str(error))
    try:
        masker_path, painter_path = resolve_checkpoints(args.checkpoint)
    except CheckpointArgumentError as error:
        results = [FloodFailure(str(path), str(error), "CheckpointError") for path in args.input]
    else:
        def provider():
            return get_pipeline(masker_path, painter_path, args.device, args.compile)

        results = flood_many(args.input, Path(args.out), params, provider,
                             max_batch=max(1, args.batch_size))
    failed = 0
    for result in results:
        if isinstance(result, FloodFailure):
            failed += 1
            if args.json:
                print(json.dumps(result.to_json()), flush=True)
            else:
                print(f"{result.input}: error: {result.error}", file=sys.stderr, flush=True)
            continue
        if args.json:
            print(json.dumps(result.to_json()), flush=True)
        else:
            took = "cached" if result.cached else f"{result.timings_ms.get('total', 0):.0f} ms"
            print(f"{result.input} -> {result.output} (mask {result.mask}; {result.backend} "
                  f"{result.model_version}; {took})", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
