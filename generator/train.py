"""``python -m generator train masker|painter``: training loops with checkpoints and resume.

    python -m generator train masker --config FILE --data sim|DIR --steps N --size S --out RUN_DIR

- ``--config``: JSON or TOML (see :mod:`generator.presets`); ``{"preset": "tiny"}`` is enough.
- ``--data sim``: the simulated world (masker: dry image, depth, segmentation, exact mask at the
  ``water_height`` level; painter: flooded render + mask at a level drawn from ``water_range``).
  ``--data DIR``: masker: labelled photos (``DIR/images`` + ``DIR/masks``, mask loss only);
  painter: flooded photos with water masks (same layout).
- ``--real DIR``: unlabelled photos for the masker's domain adaptation; by default the simulated
  world's ``"real"`` domain (different textures, colours and lighting) stands in.

RUN_DIR receives ``checkpoints/`` (model files through :mod:`generator.checkpoint` plus the
optimizer state, both written atomically), ``metrics.csv`` and ``val/step_XXXXXX.png`` grids of a
fixed held-out validation set. Re-running the same command resumes from the last checkpoint.
Mixed precision (bf16 autocast) on GPU, fp32 on CPU. When ``torch.distributed`` is initialised
(``torchrun``), models are wrapped in DistributedDataParallel and only rank 0 writes.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from generator import checkpoint as ckpt
from generator import losses
from generator.data import (
    FloodedFolderDataset,
    ImageFolderDataset,
    LabelledMaskFolderDataset,
    SimWorldDataset,
    from_model_range,
    image_grid,
)
from generator.files import replacing
from generator.metrics import mask_scores, mean_scores
from generator.models.masker import Masker
from generator.models.painter import Painter
from generator.presets import TrainSettings, read_config_file, resolve

VAL_SEED_OFFSET = 10_000_000  # validation / held-out scenes never overlap training seeds
REAL_SEED_OFFSET = 20_000_000


# --------------------------------------------------------------------------------------------
# Infrastructure: devices, distribution, batches, files
# --------------------------------------------------------------------------------------------


def _dist() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    if _dist()[1] > 1:
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)
    return module


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def autocast_context(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA; a no-op elsewhere (CPU training stays fp32)."""
    if enabled and torch.device(device).type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def batch_indices(length: int, batch_size: int, seed: int, step: int, stream: int = 0) -> list[int]:
    """Deterministic batch for a step (so a resumed run sees the same data as an unbroken one)."""
    rank, world = _dist()
    gen = torch.Generator().manual_seed(((seed * 1_000_003 + step) * 7 + stream) * 31 + rank)
    return torch.randint(0, length, (batch_size,), generator=gen).tolist()


def collate(dataset, indices: list[int], device: torch.device) -> dict[str, torch.Tensor]:
    items = [dataset[i] for i in indices]
    return {k: torch.stack([it[k] for it in items]).to(device) for k in items[0]}


def write_png(array: np.ndarray, path: Path) -> None:
    """Save an image grid (replaced whole: a viewer never opens half a PNG)."""
    with replacing(path) as temporary:
        Image.fromarray(array).save(temporary)


class MetricsLog:
    """Appends rows to ``metrics.csv``; the header grows when new columns appear."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, row: dict[str, Any]) -> None:
        rows: list[dict[str, Any]] = []
        fields: list[str] = []
        if self.path.exists():
            with self.path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                fields = list(reader.fieldnames or [])
                rows = list(reader)
        for key in row:
            if key not in fields:
                fields.append(key)
        rows.append({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        with replacing(self.path) as temporary, temporary.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)


def _checkpoint_dir(out: Path) -> Path:
    return out / "checkpoints"


def latest_state(out: Path) -> Path | None:
    """The newest complete training state in a run directory (None for a fresh run)."""
    states = sorted(_checkpoint_dir(out).glob("state_*.pt"))
    return states[-1] if states else None


# --------------------------------------------------------------------------------------------
# Masker
# --------------------------------------------------------------------------------------------


def masker_outputs(masker: nn.Module, image: torch.Tensor):
    """(mask logits (N,1,H,W), depth (N,1,H,W) or None, segmentation logits or None)."""
    out = masker(image)
    return out.mask_logits, out.depth, out.segmentation


def self_information(prob: torch.Tensor) -> torch.Tensor:
    return -prob * torch.log(prob.clamp_min(1e-8))


@dataclass
class RunContext:
    kind: str
    out: Path
    device: torch.device
    settings: TrainSettings
    steps: int
    size: int
    progress: bool


def _masker_data(args, settings: TrainSettings, size: int):
    if args.data == "sim":
        train = SimWorldDataset(size, settings.sim_scenes, 0, "sim", settings.water_height,
                                settings.shadows)
        val = SimWorldDataset(size, settings.val_scenes, VAL_SEED_OFFSET, "sim",
                              settings.water_height, settings.shadows)
    else:
        train = LabelledMaskFolderDataset(args.data, size)
        val = train
    if args.real:
        real = ImageFolderDataset(args.real, size)
    else:
        real = SimWorldDataset(size, settings.sim_scenes, REAL_SEED_OFFSET, "real",
                               settings.water_height, settings.shadows)
    return train, val, real


def _sim_targets(batch: dict[str, torch.Tensor]):
    if "mask" in batch:
        return batch["mask"], batch.get("depth"), batch.get("segmentation"), None
    labels = batch["labels"]
    return (labels == 1).float()[:, None], None, None, (labels != 2).float()[:, None]


def train_masker(args, ctx: RunContext, model_cfg, weights, settings: TrainSettings) -> dict:
    device = ctx.device
    torch.manual_seed(settings.seed)
    masker = Masker(model_cfg).to(device)
    disc = build_mask_discriminator(model_cfg).to(device)
    opt = make_extra_adam(masker.parameters(), settings.lr, settings.betas)
    opt_d = make_extra_adam(disc.parameters(), settings.lr_discriminator, settings.betas)
    start = _resume(ctx, {"masker": masker, "discriminator": disc},
                    {"opt": opt, "opt_d": opt_d})
    masker_t, disc_t = _wrap_ddp(masker, device), _wrap_ddp(disc, device)
    train_set, val_set, real_set = _masker_data(args, settings, ctx.size)
    ground_classes = list(model_cfg.ground_classes)

    def step_fn(step: int) -> dict[str, float]:
        masker_t.train()
        sim = collate(train_set, batch_indices(len(train_set), settings.batch_size,
                                               settings.seed, step), device)
        target, depth_t, seg_t, valid = _sim_targets(sim)
        adapt = settings.adaptation and step >= settings.adaptation_start
        real = collate(real_set, batch_indices(len(real_set), settings.batch_size,
                                               settings.seed, step, 1), device) if adapt else None
        # extragradient: gradient at θ -> look-ahead θ'; gradient at θ' -> update from θ
        logs = masker_update(sim, target, depth_t, seg_t, valid, real, opt.extrapolation,
                             opt_d.extrapolation)
        masker_update(sim, target, depth_t, seg_t, valid, real, opt.step, opt_d.step)
        return logs

    def masker_update(sim, target, depth_t, seg_t, valid, real, apply, apply_d):
        adapt = real is not None
        logs: dict[str, float] = {}
        with autocast_context(device, settings.amp):
            logits, depth, seg = masker_outputs(masker_t, sim["image"])
            logits = logits.float()
            if valid is None:
                loss = weights.ce * losses.bce_mask(logits, target)
            else:  # ignore "may be water" pixels of labelled photos
                loss = weights.ce * (F.binary_cross_entropy_with_logits(
                    logits, target, reduction="none") * valid).sum() / valid.sum().clamp_min(1)
            logs["ce"] = float(loss.detach()) / max(weights.ce, 1e-12)
            if depth is not None and depth_t is not None:
                depth_loss = losses.berhu(depth.float(), depth_t)
                loss = loss + weights.depth * depth_loss
                logs["depth"] = float(depth_loss.detach())
            if seg is not None and seg_t is not None:
                seg_loss = losses.segmentation_ce(seg.float(), seg_t)
                loss = loss + weights.seg_ce * seg_loss
                logs["seg_ce"] = float(seg_loss.detach())
            if adapt:
                r_logits, _, r_seg = masker_outputs(masker_t, real["image"])
                r_prob = torch.sigmoid(r_logits.float())
                me = losses.minent(r_prob)
                tv = losses.total_variation(r_prob)
                adapt_loss = weights.me * me + weights.tv * tv
                logs.update(me=float(me.detach()), tv=float(tv.detach()))
                if r_seg is not None:
                    seg_prob = torch.softmax(r_seg.float(), dim=1)
                    ground = seg_prob[:, ground_classes].sum(dim=1, keepdim=True).detach()
                    gi = losses.ground_intersection(r_prob, ground)
                    seg_me = losses.segmentation_minent(seg_prob)
                    adapt_loss = adapt_loss + weights.gi * gi + weights.seg_me * seg_me
                    logs.update(gi=float(gi.detach()), seg_me=float(seg_me.detach()))
                if weights.gan > 0:
                    g_adv = losses.wgan_generator(disc_t(self_information(r_prob)))
                    adapt_loss = adapt_loss + weights.gan * g_adv
                    logs["g_adv"] = float(g_adv.detach())
                loss = loss + adapt_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        apply()
        logs["loss"] = float(loss.detach())
        if adapt and weights.gan > 0:
            p_sim = torch.sigmoid(logits.detach())
            with autocast_context(device, settings.amp):
                d_loss = losses.wgan_discriminator(
                    disc_t(self_information(p_sim)), disc_t(self_information(r_prob.detach())))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            apply_d()
            logs["d_loss"] = float(d_loss.detach())
        return logs

    def validate(step: int) -> dict[str, float]:
        scores = evaluate_masker_model(masker, val_set, device, settings.amp)
        if _dist()[0] == 0:
            write_png(masker_grid(masker, val_set, device, settings.amp),
                       ctx.out / "val" / f"step_{step:06d}.png")
        return {f"val_{k}": v for k, v in scores.items()}

    def save(step: int) -> None:
        _save(ctx, step, "masker", masker, model_cfg,
              {"masker": masker, "discriminator": disc}, {"opt": opt, "opt_d": opt_d})

    return _loop(ctx, start, step_fn, validate, save)


@torch.no_grad()
def predict_mask(masker: nn.Module, images: torch.Tensor, amp: bool = True) -> torch.Tensor:
    """Mask probabilities (N, 1, H, W) in fp32."""
    with autocast_context(images.device, amp):
        logits, _, _ = masker_outputs(masker, images)
    return torch.sigmoid(logits.float())


def _labels_of(item: dict[str, torch.Tensor]) -> np.ndarray:
    if "labels" in item:
        return item["labels"].numpy()
    return item["mask"][0].numpy().astype(np.int64)


def evaluate_masker_model(masker: nn.Module, dataset, device: torch.device, amp: bool = True,
                          batch_size: int = 8) -> dict[str, float]:
    """Mean IoU, error, F0.5 and edge coherence of the binarised mask over a labelled dataset."""
    was_training = masker.training
    masker.eval()
    scores = []
    for start in range(0, len(dataset), batch_size):
        idx = list(range(start, min(start + batch_size, len(dataset))))
        images = torch.stack([dataset[i]["image"] for i in idx]).to(device)
        probs = predict_mask(masker, images, amp).cpu().numpy()[:, 0]
        for i, prob in zip(idx, probs, strict=True):
            scores.append(mask_scores((prob >= 0.5).astype(np.float64), _labels_of(dataset[i])))
    masker.train(was_training)
    return mean_scores(scores).as_dict()


def masker_grid(masker: nn.Module, dataset, device: torch.device, amp: bool = True,
                count: int = 8) -> np.ndarray:
    """Rows of (image, true mask, predicted probability) for the first ``count`` items."""
    was_training = masker.training
    masker.eval()
    count = min(count, len(dataset))
    images = torch.stack([dataset[i]["image"] for i in range(count)]).to(device)
    probs = predict_mask(masker, images, amp).cpu().numpy()[:, 0]
    masker.train(was_training)
    rows = []
    for i in range(count):
        truth = (_labels_of(dataset[i]) == 1).astype(np.float32)
        rows.append([from_model_range(images[i]), truth, probs[i]])
    return image_grid(rows)


# --------------------------------------------------------------------------------------------
# Painter
# --------------------------------------------------------------------------------------------


def hide_water(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The painter's input: the photo with the water region blanked out."""
    return image * (1 - mask)


def composite(image: torch.Tensor, painted: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``y = P(x (1 - m)) m + x (1 - m)``."""
    return painted * mask + image * (1 - mask)


def masked_l1(image: torch.Tensor, painted: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over water pixels (and channels), in [-1, 1] image units."""
    per_pixel = (image - painted).abs().mean(dim=1, keepdim=True) * mask
    return per_pixel.sum() / mask.sum().clamp_min(1.0)


def _painter_data(args, settings: TrainSettings, size: int):
    if args.data == "sim":
        train = SimWorldDataset(size, settings.sim_scenes, 0, "sim", tuple(settings.water_range),
                                settings.shadows)
        val = SimWorldDataset(size, settings.val_scenes, VAL_SEED_OFFSET, "sim",
                              tuple(settings.water_range), settings.shadows)
        return train, val
    train = FloodedFolderDataset(args.data, size)
    return train, train


def _painter_batch(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    # simulated items carry the dry view too; the painter learns from the flooded one
    return (batch["flooded"] if "flooded" in batch else batch["image"]), batch["mask"]


def train_painter(args, ctx: RunContext, model_cfg, weights, settings: TrainSettings) -> dict:
    device = ctx.device
    torch.manual_seed(settings.seed)
    painter = Painter(model_cfg).to(device)
    disc = build_painter_discriminator(model_cfg).to(device)
    opt = torch.optim.Adam(painter.parameters(), settings.lr, betas=tuple(settings.betas))
    opt_d = torch.optim.Adam(disc.parameters(), settings.lr_discriminator,
                             betas=tuple(settings.betas))
    vgg = losses.VGGPerceptualLoss(settings.vgg_weights).to(device) if (
        settings.vgg_weights and weights.vgg > 0) else None
    start = _resume(ctx, {"painter": painter, "discriminator": disc},
                    {"opt": opt, "opt_d": opt_d})
    painter_t, disc_t = _wrap_ddp(painter, device), _wrap_ddp(disc, device)
    train_set, val_set = _painter_data(args, settings, ctx.size)
    use_gan = settings.use_discriminator and (weights.gan > 0 or weights.feature_matching > 0)

    def step_fn(step: int) -> dict[str, float]:
        painter_t.train()
        batch = collate(train_set, batch_indices(len(train_set), settings.batch_size,
                                                 settings.seed, step), device)
        image, mask = _painter_batch(batch)
        logs: dict[str, float] = {}
        with autocast_context(device, settings.amp):
            painted = painter_t(hide_water(image, mask), mask).float()
            result = composite(image, painted, mask)
            rec = losses.masked_reconstruction(painted, image, mask)
            loss = weights.reconstruction * rec
            logs["rec"] = float(rec.detach())
            if use_gan:
                fake_out = disc_t(result, mask)
                with torch.no_grad():
                    real_out = disc_t(image, mask)
                g_adv = losses.gan_generator(fake_out, weights.gan_mode)
                fm = losses.feature_matching(real_out, fake_out)
                loss = loss + weights.gan * g_adv + weights.feature_matching * fm
                logs.update(g_adv=float(g_adv.detach()), fm=float(fm.detach()))
            if vgg is not None:
                perceptual = vgg(result, image)
                loss = loss + weights.vgg * perceptual
                logs["vgg"] = float(perceptual.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        logs["loss"] = float(loss.detach())
        logs["masked_l1"] = float(masked_l1(image, painted.detach(), mask))
        if use_gan:
            with autocast_context(device, settings.amp):
                d_loss = losses.gan_discriminator(
                    disc_t(image, mask), disc_t(result.detach(), mask), weights.gan_mode)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            logs["d_loss"] = float(d_loss.detach())
        return logs

    def validate(step: int) -> dict[str, float]:
        value, grid = evaluate_painter_model(painter, val_set, device, settings.amp)
        if _dist()[0] == 0:
            write_png(grid, ctx.out / "val" / f"step_{step:06d}.png")
        return {"val_masked_l1": value}

    def save(step: int) -> None:
        _save(ctx, step, "painter", painter, model_cfg,
              {"painter": painter, "discriminator": disc}, {"opt": opt, "opt_d": opt_d})

    return _loop(ctx, start, step_fn, validate, save)


@torch.no_grad()
def evaluate_painter_model(painter: nn.Module, dataset, device: torch.device, amp: bool = True,
                           batch_size: int = 8, grid_count: int = 8) -> tuple[float, np.ndarray]:
    """(masked L1 over all water pixels of the dataset, grid of input / painted / truth rows)."""
    was_training = painter.training
    painter.eval()
    total, pixels, rows = 0.0, 0.0, []
    for start in range(0, len(dataset), batch_size):
        idx = list(range(start, min(start + batch_size, len(dataset))))
        image, mask = _painter_batch({k: torch.stack([dataset[i][k] for i in idx]).to(device)
                                      for k in dataset[idx[0]]})
        with autocast_context(device, amp):
            painted = painter(hide_water(image, mask), mask).float()
        total += float(((image - painted).abs().mean(dim=1, keepdim=True) * mask).sum())
        pixels += float(mask.sum())
        result = composite(image, painted, mask)
        for j in range(len(idx)):
            if len(rows) < grid_count:
                rows.append([from_model_range(hide_water(image, mask)[j]),
                             from_model_range(result[j]), from_model_range(image[j])])
    painter.train(was_training)
    return total / max(pixels, 1.0), image_grid(rows)


# --------------------------------------------------------------------------------------------
# Shared loop, checkpoints, resume
# --------------------------------------------------------------------------------------------


def _resume(ctx: RunContext, modules: dict[str, nn.Module],
            optimizers: dict[str, torch.optim.Optimizer]) -> int:
    state_path = latest_state(ctx.out)
    if state_path is None:
        return 0
    state = torch.load(state_path, map_location=ctx.device, weights_only=False)
    for name, module in modules.items():
        module.load_state_dict(state["modules"][name])
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(state["optimizers"][name])
    print(f"resuming {ctx.kind} from step {state['step']} ({state_path})", file=sys.stderr)
    return int(state["step"])


def _save(ctx: RunContext, step: int, kind: str, model: nn.Module, model_cfg,
          modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer]) -> None:
    if _dist()[0] != 0:
        return
    directory = _checkpoint_dir(ctx.out)
    directory.mkdir(parents=True, exist_ok=True)
    ckpt.save_checkpoint(directory / f"{kind}_{step:06d}.pt", model, model_cfg, step=step,
                         kind=kind)
    # the resumable state goes last: a run killed in between resumes from the previous one
    with replacing(directory / f"state_{step:06d}.pt") as temporary:
        torch.save({"step": step, "kind": kind,
                    "modules": {k: m.state_dict() for k, m in modules.items()},
                    "optimizers": {k: o.state_dict() for k, o in optimizers.items()}}, temporary)
    for old in sorted(directory.glob("state_*.pt"))[:-2]:  # keep the two newest states
        old.unlink()


def _loop(ctx: RunContext, start: int, step_fn, validate, save) -> dict:
    from tqdm import tqdm

    settings = ctx.settings
    log = MetricsLog(ctx.out / "metrics.csv")
    rank = _dist()[0]
    summary: dict[str, Any] = {"start_step": start, "steps": ctx.steps}
    if start == 0 and rank == 0:
        first = validate(0)
        log.append({"step": 0, "elapsed_s": 0.0, **first})
        summary["initial"] = first
    began = time.perf_counter()
    bar = tqdm(range(start, ctx.steps), initial=start, total=ctx.steps, disable=not ctx.progress,
               desc=f"train {ctx.kind}", file=sys.stderr)
    logs: dict[str, float] = {}
    for step in bar:
        logs = step_fn(step)
        done = step + 1
        bar.set_postfix({k: f"{v:.3g}" for k, v in list(logs.items())[:4]})
        row: dict[str, Any] = {}
        if done % settings.log_every == 0 or done == ctx.steps:
            row.update(logs)
        if done % settings.val_every == 0 or done == ctx.steps:
            row.update(validate(done))
        if row and rank == 0:
            log.append({"step": done, "elapsed_s": time.perf_counter() - began, **row})
            summary["final"] = row
        if done % settings.checkpoint_every == 0 or done == ctx.steps:
            save(done)
    bar.close()
    summary["seconds"] = time.perf_counter() - began
    if "final" not in summary and rank == 0:  # nothing to do: already at the requested step
        summary["final"] = validate(ctx.steps)
    return summary


# --------------------------------------------------------------------------------------------
# Model construction through the models package (kept in one place)
# --------------------------------------------------------------------------------------------


def build_mask_discriminator(model_cfg) -> nn.Module:
    from generator.models import build_masker_discriminator

    return build_masker_discriminator(model_cfg)


def build_painter_discriminator(model_cfg) -> nn.Module:
    from generator.models import build_painter_discriminator

    return build_painter_discriminator(model_cfg)


def make_extra_adam(params, lr: float, betas) -> torch.optim.Optimizer:
    from generator.optim import ExtraAdam

    return ExtraAdam(params, lr=lr, betas=tuple(betas))


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m generator train",
                                     description="Train the masker or the painter.")
    parser.add_argument("kind", choices=("masker", "painter"))
    parser.add_argument("--config", help="JSON or TOML config (see generator.presets)")
    parser.add_argument("--data", default="sim", help="'sim' or a folder (images/ + masks/)")
    parser.add_argument("--real", help="folder of unlabelled real photos (masker adaptation)")
    parser.add_argument("--steps", type=int, required=True, help="total optimisation steps")
    parser.add_argument("--size", type=int, default=128, help="square training size in pixels")
    parser.add_argument("--out", required=True, help="run directory (resumed if it exists)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: auto)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    model_cfg, weights, settings = resolve(args.kind, read_config_file(args.config))
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and device.index is None and _dist()[1] > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if _dist()[0] == 0:
        (out / "config.json").write_text(json.dumps(
            {"kind": args.kind, "model": model_cfg.to_dict(), "loss": weights.to_dict(),
             "train": settings.to_dict(), "data": args.data, "real": args.real,
             "size": args.size}, indent=2))
    ctx = RunContext(args.kind, out, device, settings, args.steps, args.size,
                     progress=not args.no_progress)
    trainer = train_masker if args.kind == "masker" else train_painter
    summary = trainer(args, ctx, model_cfg, weights, settings)
    last = sorted(_checkpoint_dir(out).glob(f"{args.kind}_*.pt"))
    summary["checkpoint"] = str(last[-1]) if last else None
    if args.json:
        print(json.dumps(summary))
    else:
        final = summary.get("final", {})
        shown = ", ".join(f"{k}={v:.4g}" for k, v in final.items() if isinstance(v, float))
        print(f"{args.kind}: step {args.steps}; {shown}; checkpoint {summary['checkpoint']}")
    return 0
