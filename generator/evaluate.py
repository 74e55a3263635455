"""``python -m generator evaluate masker|painter --checkpoint C --data DIR|sim [--json]``.

- masker: mean IoU, error rate, F0.5 and edge coherence (see :mod:`generator.metrics`) of the
  binarised mask (threshold 0.5) over a labelled folder (``DIR/images`` + ``DIR/masks`` with
  0 cannot / 1 or 255 must / 2 or 128 may) or over held-out simulated scenes (``sim``: seeds
  never used for training, water at the checkpoint's training level unless ``--water-height``).
- painter: masked L1 (mean absolute error over water pixels, [-1, 1] units) of the painted water
  against the real water, and a PNG grid of (input with water hidden, result, truth) rows.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from generator import checkpoint as ckpt
from generator.data import FloodedFolderDataset, LabelledMaskFolderDataset, SimWorldDataset
from generator.train import (
    VAL_SEED_OFFSET,
    evaluate_masker_model,
    evaluate_painter_model,
    write_png,
)

HELD_OUT_SEED_OFFSET = VAL_SEED_OFFSET + 500_000  # disjoint from training and validation seeds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m generator evaluate",
                                     description="Evaluate a masker or painter checkpoint.")
    parser.add_argument("kind", choices=("masker", "painter"))
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", default="sim", help="'sim' or a folder (images/ + masks/)")
    parser.add_argument("--size", type=int, default=128, help="square evaluation size")
    parser.add_argument("--count", type=int, default=64, help="simulated scenes (--data sim)")
    parser.add_argument("--water-height", type=float, default=0.5,
                        help="masker: water level of the simulated ground truth (m)")
    parser.add_argument("--grid", default=None, help="painter: where to write the sample grid")
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    loaded = ckpt.load_checkpoint(args.checkpoint, map_location=device)
    model = loaded.model.to(device).eval()
    result: dict = {"kind": args.kind, "checkpoint": str(args.checkpoint),
                    "model_version": loaded.content_hash, "data": args.data}
    if args.kind == "masker":
        if args.data == "sim":
            dataset = SimWorldDataset(args.size, args.count, HELD_OUT_SEED_OFFSET, "sim",
                                      args.water_height, cache=False)
        else:
            dataset = LabelledMaskFolderDataset(args.data, args.size)
        result.update(evaluate_masker_model(model, dataset, device))
        result["images"] = len(dataset)
    else:
        if args.data == "sim":
            dataset = SimWorldDataset(args.size, args.count, HELD_OUT_SEED_OFFSET, "sim",
                                      (0.15, 1.2), cache=False)
        else:
            dataset = FloodedFolderDataset(args.data, args.size)
        value, grid = evaluate_painter_model(model, dataset, device)
        grid_path = Path(args.grid) if args.grid else Path(args.checkpoint).with_suffix(".grid.png")
        write_png(grid, grid_path)
        result.update(masked_l1=value, images=len(dataset), grid=str(grid_path))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return 0
