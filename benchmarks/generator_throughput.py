"""Throughput of the flood generator: images/s, latency, FLOPs per image and MFU.

    python benchmarks/generator_throughput.py                      # full-size models, CUDA if present
    python benchmarks/generator_throughput.py --tiny               # CI: tiny models, CPU, seconds
    python benchmarks/generator_throughput.py --device cuda --batch-sizes 1,8,16,32 \
        --dtypes fp32,bf16 --iters 20 --compile

What is timed: the device part of :class:`generator.pipeline.FloodPipeline` on a batch already in
device memory (masker -> threshold -> painter on ``x * (1 - m)`` -> composite
``P * m + x * (1 - m)``), with the same preparation as in service (spectral norm and batch norm
folded, channels-last and autocast on CUDA, optional ``torch.compile``). Decoding, resizing and
file writing are not included. Each configuration runs ``--warmup`` untimed iterations, then
``--iters`` timed ones (synchronised); the median is reported.

FLOPs per image come from ``torch.utils.flop_counter.FlopCounterMode`` (via
``generator.flops.count_flops``: 2 FLOPs per multiply-add of convolutions and matrix products).
MFU = FLOPs per image x images/s / the device's dense peak for the dtype, from a table by device
name (fp32 on CUDA is compared with the TF32 tensor-core peak when cuDNN may use TF32, PyTorch's
default for convolutions) or ``--peak-tflops``. Models have random weights (the same FLOPs and
speed as trained ones); full-size configs are the spec's (ResNet-101 DeepLabv3+ masker with the
SPADE mask decoder, 640-channel SPADE painter).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generator.config import (  # noqa: E402
    MaskerConfig,
    PainterConfig,
    tiny_masker_config,
    tiny_painter_config,
)
from generator.flops import count_flops  # noqa: E402
from generator.models import build_masker, build_painter, compose  # noqa: E402
from generator.pipeline import FloodPipeline, PipelineOptions  # noqa: E402

# Dense peak TFLOP/s (no sparsity) by device-name fragment; first match wins.
PEAK_TFLOPS: list[tuple[tuple[str, ...], dict[str, float]]] = [
    (("H100", "PCIe"), {"bf16": 756.0, "fp16": 756.0, "tf32": 378.0, "fp32": 51.0}),
    (("H100", "NVL"), {"bf16": 835.0, "fp16": 835.0, "tf32": 418.0, "fp32": 60.0}),
    (("H100",), {"bf16": 989.0, "fp16": 989.0, "tf32": 494.0, "fp32": 67.0}),  # SXM
    (("H200",), {"bf16": 989.0, "fp16": 989.0, "tf32": 494.0, "fp32": 67.0}),
    (("GH200",), {"bf16": 989.0, "fp16": 989.0, "tf32": 494.0, "fp32": 67.0}),
    (("A100",), {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5}),
    (("L40S",), {"bf16": 362.0, "fp16": 362.0, "tf32": 183.0, "fp32": 91.6}),
    (("L4",), {"bf16": 121.0, "fp16": 121.0, "tf32": 60.0, "fp32": 30.3}),
    (("A10",), {"bf16": 125.0, "fp16": 125.0, "tf32": 62.5, "fp32": 31.2}),
]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def peak_tflops(name: str, dtype: str, device: torch.device, override: float | None) -> tuple[float | None, str]:
    """(peak, which) for ``dtype`` on the named device; None when unknown."""
    if override:
        return override, "given"
    if device.type != "cuda":
        return None, "unknown"
    key = dtype
    if dtype == "fp32" and torch.backends.cudnn.allow_tf32:
        key = "tf32"
    for fragments, peaks in PEAK_TFLOPS:
        if all(fragment in name for fragment in fragments):
            return peaks[key], key
    return None, "unknown"


def build_models(tiny: bool) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    masker_cfg = tiny_masker_config() if tiny else MaskerConfig()
    painter_cfg = tiny_painter_config() if tiny else PainterConfig()
    return build_masker(masker_cfg), build_painter(painter_cfg)


def flops_per_image(masker: torch.nn.Module, painter: torch.nn.Module, size: int) -> dict[str, float]:
    masker_flops = count_flops(masker, [(1, 3, size, size)]).flops
    painter_flops = count_flops(painter, [(1, 3, size, size), (1, 1, size, size)]).flops
    return {"masker": masker_flops, "painter": painter_flops, "total": masker_flops + painter_flops}


def measure(pipeline: FloodPipeline, batch: int, size: int, iters: int, warmup: int) -> dict[str, float]:
    """Median seconds per batch for the whole chain, and per stage."""
    x = torch.rand(batch, 3, size, size, device=pipeline.device) * 2 - 1

    def step() -> dict[str, float]:
        stage: dict[str, float] = {}
        start = time.perf_counter()
        out = pipeline.run_models(x, "flood", 0.5, stage)
        with torch.inference_mode():
            binary = (out["mask_probability"] >= 0.5).float()
            composite = compose(x, out["painted"], binary)
        if pipeline.device.type == "cuda":
            torch.cuda.synchronize(pipeline.device)
        assert composite.shape == x.shape
        stage["total"] = (time.perf_counter() - start) * 1000
        return stage

    for _ in range(warmup):
        step()
    runs = [step() for _ in range(iters)]
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def parse_list(text: str, cast=str) -> list:
    return [cast(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=None, help="working side (640; --tiny: 128)")
    parser.add_argument("--batch-sizes", default=None, help="comma list (1,2,4,8,16,32; --tiny: 1,2)")
    parser.add_argument("--dtypes", default="fp32,bf16", help="comma list of fp32, bf16, fp16")
    parser.add_argument("--iters", type=int, default=None, help="timed iterations (10; --tiny: 2)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed iterations (3; --tiny: 1)")
    parser.add_argument("--compile", action="store_true", help="torch.compile masker and painter")
    parser.add_argument("--compile-mode", default=None,
                        help="torch.compile mode, e.g. max-autotune, reduce-overhead (CUDA graphs)")
    parser.add_argument("--tiny", action="store_true", help="tiny configs (CI)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU")
    parser.add_argument("--json", action="store_true", help="one JSON line per configuration")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    size = args.size or (128 if args.tiny else 640)
    batch_sizes = parse_list(args.batch_sizes, int) if args.batch_sizes else (
        [1, 2] if args.tiny else [1, 2, 4, 8, 16, 32])
    iters = args.iters or (2 if args.tiny else 10)
    warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 3)
    name = device_name(device)

    masker, painter = build_models(args.tiny)
    flops = flops_per_image(masker, painter, size)
    params = sum(p.numel() for p in masker.parameters()) + sum(p.numel() for p in painter.parameters())
    print(f"# device: {name}; size {size}x{size}; {'tiny' if args.tiny else 'full-size'} configs, "
          f"{params / 1e6:.1f} M parameters; compile={args.compile}", flush=True)
    print(f"# FLOPs per image: masker {flops['masker'] / 1e9:.1f} G + painter "
          f"{flops['painter'] / 1e9:.1f} G = {flops['total'] / 1e9:.1f} GFLOP "
          f"({flops['total'] / 2e9:.1f} G multiply-adds)", flush=True)
    if not args.json:
        print(f"{'dtype':>5} {'batch':>5} {'img/s':>9} {'batch ms':>9} {'ms/img':>8} "
              f"{'masker ms':>9} {'painter ms':>10} {'TFLOP/s':>8} {'MFU':>7}  peak", flush=True)
    rows = []
    for dtype in parse_list(args.dtypes):
        pipeline = FloodPipeline(
            *build_models(args.tiny), backend="benchmark-random", versions={"masker": "random",
                                                                           "painter": "random"},
            options=PipelineOptions(size=size, device=str(device), precision=dtype,
                                    compile=args.compile, compile_mode=args.compile_mode))
        peak, peak_kind = peak_tflops(name, dtype, device, args.peak_tflops)
        for batch in batch_sizes:
            try:
                timing = measure(pipeline, batch, size, iters, warmup)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                print(f"{dtype:>5} {batch:>5}  out of memory", flush=True)
                continue
            images_per_s = batch / (timing["total"] / 1000)
            achieved = flops["total"] * images_per_s / 1e12
            mfu = achieved / peak if peak else None
            row = {"device": name, "dtype": dtype, "batch": batch, "size": size,
                   "images_per_s": round(images_per_s, 3), "batch_ms": round(timing["total"], 3),
                   "ms_per_image": round(timing["total"] / batch, 3),
                   "masker_ms": round(timing["masker"], 3), "painter_ms": round(timing["painter"], 3),
                   "gflops_per_image": round(flops["total"] / 1e9, 3),
                   "achieved_tflops": round(achieved, 4), "peak_tflops": peak,
                   "mfu": None if mfu is None else round(mfu, 5), "compile": args.compile,
                   "tiny": args.tiny}
            rows.append(row)
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                mfu_text = "n/a" if mfu is None else f"{100 * mfu:.1f}%"
                print(f"{dtype:>5} {batch:>5} {images_per_s:>9.2f} {timing['total']:>9.1f} "
                      f"{timing['total'] / batch:>8.1f} {timing['masker']:>9.1f} "
                      f"{timing['painter']:>10.1f} {achieved:>8.3f} {mfu_text:>7}  "
                      f"{peak_kind if peak else '-'}", flush=True)
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
