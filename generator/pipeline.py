"""Inference: flood (or smog / wildfire) a batch of photos with a masker and a painter.

:class:`FloodPipeline` holds one masker and one painter, prepared once for inference (eval mode,
spectral norm and batch norm folded into plain convolutions, channels-last and optional
``torch.compile`` on GPU), and turns photos of any size into results of the same size::

    photo (H x W) -> frame to size x size (default 640; "pad": longer side to the working size,
    edges replicated, nothing lost; "crop": shorter side, centre crop) -> [-1, 1]
    -> masker -> m = (mask >= threshold)
    -> painter(x * (1 - m), m) -> painted P
    -> back to H x W: the mask *probability* and P are resized to the original resolution, the
       binary mask is taken there, and y = where(mask, P, photo) is pasted in uint8.

The paste happens at the original resolution with a binary mask, so every pixel outside the mask
is bit-identical to the input (no resampling of the photo itself). Smog and wildfire use the
masker's depth and segmentation heads with :mod:`generator.effects`; their "mask" is the
effect's strength map (smog: haze amount ``1 - t``; wildfire: weight of the fire colour in the
sky) and the whole photo is graded.

Numerics: on CUDA the models run under bf16 autocast (fp16 where bf16 is unsupported) in
``torch.inference_mode``; on CPU in fp32 by default (bf16 autocast also works there and is what
the tests use to exercise the mixed-precision path). Every :class:`FloodOutput` records the
backend, the model version (content hashes of masker and painter), the parameters and the time
spent in each stage.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from generator import effects
from generator.data import Framing, compute_framing
from generator.params import EVENTS

FRAMES = ("pad", "crop")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEFAULT_SIZE = 640
CHECKPOINT_BACKEND = "checkpoint"
#: Shorter side at which the wildfire sky weight (a dilated, widely blurred mask) is computed.
FIRE_WEIGHT_SIDE = 160

ImageInput = Any  # PIL.Image.Image | np.ndarray (H, W, 3) uint8 | (H, W) greyscale


# --------------------------------------------------------------------------------------------
# Batch-norm folding
# --------------------------------------------------------------------------------------------


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    from torch.nn.utils import parametrize

    return (
        type(conv) is nn.Conv2d
        and type(bn) is nn.BatchNorm2d
        and bn.track_running_stats
        and bn.running_mean is not None
        and conv.out_channels == bn.num_features
        and not parametrize.is_parametrized(conv)
    )


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


class _OneLevelTracer(fx.Tracer):
    """Traces one module's own ``forward``: every submodule it calls stays a single node."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return True


def batchnorm_pairs(module: nn.Module) -> list[tuple[str, str]]:
    """(conv, bn) names where a ``BatchNorm2d`` takes a ``Conv2d``'s output and nothing else does.

    Found with torch.fx in each module's own ``forward`` (``self.bn1(self.conv1(x))`` in a ResNet
    block, adjacent layers of an ``nn.Sequential``); a forward fx cannot trace (control flow on
    shapes) contributes no pair of its own, its submodules are still traced. A conv called more
    than once (shared weights) is never folded.
    """
    found: list[tuple[str, str]] = []
    calls: dict[str, int] = {}
    for name, owner in module.named_modules():
        if not list(owner.children()):
            continue
        try:
            graph = _OneLevelTracer().trace(owner)
        except Exception:  # fx raises TraceError, TypeError, NotImplementedError…
            continue
        prefix = f"{name}." if name else ""
        for node in graph.nodes:
            if node.op != "call_module":
                continue
            calls[prefix + node.target] = calls.get(prefix + node.target, 0) + 1
            source = node.args[0] if node.args else None
            if (isinstance(source, fx.Node) and source.op == "call_module" and len(source.users) == 1
                    and _foldable(owner.get_submodule(source.target), owner.get_submodule(node.target))):
                found.append((prefix + source.target, prefix + node.target))
    return [(conv, bn) for conv, bn in found if calls[conv] == 1]


def fold_batchnorm(module: nn.Module) -> int:
    """Fold eval-mode ``BatchNorm2d`` layers into the ``Conv2d`` before them; returns the count.

    Each pair of :func:`batchnorm_pairs` becomes one conv (``torch.nn.utils.fusion.fuse_conv_bn_eval``:
    ``W * g / sqrt(var + eps)`` and a bias) followed by ``nn.Identity``, so inference skips one
    memory pass per BN. Call it on a model in eval mode (running statistics); it is meaningless
    during training.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if module.training:
        raise ValueError("fold_batchnorm needs a model in eval mode (it uses running statistics)")
    pairs = batchnorm_pairs(module)
    for conv_name, bn_name in pairs:
        fused = fuse_conv_bn_eval(module.get_submodule(conv_name), module.get_submodule(bn_name))
        _set_submodule(module, conv_name, fused)
        _set_submodule(module, bn_name, nn.Identity())
    return len(pairs)


# --------------------------------------------------------------------------------------------
# Options, outputs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineOptions:
    """How the models run. ``size``: working side (a multiple of the painter's 2**upsamplings,
    128 for the full painter; None: the backend's default); ``precision``: "auto" = bf16 (or fp16) on CUDA, fp32 on CPU;
    ``channels_last``: None = on for CUDA; ``compile_mode`` is passed to ``torch.compile``
    ("reduce-overhead" captures CUDA graphs, "max-autotune" also tunes kernels); ``frame``: None
    = the backend's ("pad" for this project's models, "crop" for imported ClimateGAN weights,
    as the published inference script does)."""

    size: int | None = None
    device: str = "cpu"
    precision: str = "auto"
    channels_last: bool | None = None
    fold_batchnorm: bool = True
    compile: bool = False
    compile_mode: str | None = None
    frame: str | None = None
    sync_timings: bool = True

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.frame is not None and self.frame not in FRAMES:
            raise ValueError(f"frame must be one of {FRAMES}, got {self.frame!r}")
        if self.size is not None and self.size < 8:
            raise ValueError("size must be at least 8")


@dataclass
class FloodOutput:
    """One result at the input's size, with its provenance.

    ``mask``: uint8 (H, W); flood: 0/255 binary water mask (the pixels that were replaced);
    smog / wildfire: the effect's strength 0..255 (haze amount; fire weight in the sky).
    """

    image: np.ndarray
    mask: np.ndarray
    event: str
    backend: str
    model_version: str
    params: dict[str, Any]
    timings_ms: dict[str, float]
    batch_size: int = 1
    versions: dict[str, str] = field(default_factory=dict)

    def provenance(self) -> dict[str, Any]:
        """Everything but the pixels: what produced this output and how long it took."""
        return {
            "event": self.event,
            "backend": self.backend,
            "model_version": self.model_version,
            "versions": dict(self.versions),
            "params": dict(self.params),
            "timings_ms": dict(self.timings_ms),
            "batch_size": self.batch_size,
        }


def as_rgb_array(image: ImageInput) -> np.ndarray:
    """A contiguous uint8 (H, W, 3) array from a PIL image or a numpy array (grey or RGB[A])."""
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL.Image
        from PIL import ImageOps

        return np.asarray(ImageOps.exif_transpose(image).convert("RGB")).copy()
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) image, got shape {arr.shape}")
    arr = arr[..., :3]
    if not arr.flags.writeable:  # torch.from_numpy wants a writable buffer
        arr = arr.copy()
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.max(initial=0) <= 1.0:
            arr = np.clip(arr * 255.0 + 0.5, 0, 255)
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


# --------------------------------------------------------------------------------------------
# Geometry on the device
# --------------------------------------------------------------------------------------------


def _resize(t: Tensor, height: int, width: int, mode: str = "bilinear") -> Tensor:
    """(N, C, h, w) -> (N, C, height, width); antialiased when shrinking."""
    if tuple(t.shape[-2:]) == (height, width):
        return t
    if mode == "nearest":
        return F.interpolate(t, size=(height, width), mode="nearest-exact")
    shrinking = height < t.shape[-2] or width < t.shape[-1]
    return F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False,
                         antialias=shrinking)


def frame_image(photo: Tensor, framing: Framing) -> Tensor:
    """(1, 3, H, W) float -> (1, 3, size, size): resize and centre-crop, or resize and pad by
    replicating the edges (the masker never sees artificial black bars)."""
    resized = _resize(photo, framing.resized_height, framing.resized_width)
    size = framing.size
    if framing.mode == "crop":
        return resized[..., framing.top:framing.top + size, framing.left:framing.left + size]
    bottom = size - framing.resized_height - framing.top
    right = size - framing.resized_width - framing.left
    return F.pad(resized, (framing.left, right, framing.top, bottom), mode="replicate")


def unframe(square: Tensor, framing: Framing, outside: str | float = 0.0,
            mode: str = "bilinear") -> Tensor:
    """(1, C, size, size) model output -> (1, C, H, W) at the original resolution.

    ``crop`` framing: the square covers only the centre of the original; the rest is the
    constant ``outside`` or the nearest edge value (``outside="replicate"``), the same
    arithmetic as :func:`generator.data.restore_size`.
    """
    height, width = framing.height, framing.width
    if framing.mode == "pad":
        inner = square[..., framing.top:framing.top + framing.resized_height,
                       framing.left:framing.left + framing.resized_width]
        return _resize(inner, height, width, mode)
    scale_y, scale_x = height / framing.resized_height, width / framing.resized_width
    top, bottom = round(framing.top * scale_y), round((framing.top + framing.size) * scale_y)
    left, right = round(framing.left * scale_x), round((framing.left + framing.size) * scale_x)
    bottom, right = min(bottom, height), min(right, width)
    inner = _resize(square, bottom - top, right - left, mode)
    padding = (left, width - right, top, height - bottom)
    if outside == "replicate":
        return F.pad(inner, padding, mode="replicate") if any(padding) else inner
    return F.pad(inner, padding, mode="constant", value=float(outside))


# --------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16  # auto on CUDA


def _size_multiple(painter: nn.Module) -> int:
    cfg = getattr(painter, "cfg", None)
    multiple = int(getattr(cfg, "size_multiple", 0) or getattr(painter, "size_multiple", 8))
    return math.lcm(multiple, 8)  # the masker's output stride


class FloodPipeline:
    """A masker and a painter prepared once; :meth:`flood_batch` floods lists of photos.

    The working size is ``options.size``, else ``default_size`` (the backend's own: 640 for
    full models, the training resolution for the tiny reference checkpoints).

    ``masker(x)`` must return an object with ``.mask`` (N,1,H,W probabilities), ``.depth``
    (N,1,H,W) and ``.segmentation`` (N,C,H,W logits) at the input's resolution;
    ``painter(masked_image, mask)`` returns RGB in [-1, 1]. ``versions`` names each part's
    version; ``model_version`` joins them ("<masker>-<painter>").
    """

    def __init__(
        self,
        masker: nn.Module,
        painter: nn.Module,
        *,
        backend: str,
        versions: dict[str, str],
        options: PipelineOptions | None = None,
        sky_class: int = effects.SKY_CLASS,
        default_size: int = DEFAULT_SIZE,
        default_frame: str = "pad",
        default_precision: str = "auto",
    ) -> None:
        self.options = options or PipelineOptions()
        self.frame = self.options.frame or default_frame
        if self.frame not in FRAMES:
            raise ValueError(f"frame must be one of {FRAMES}, got {self.frame!r}")
        self.device = torch.device(self.options.device)
        self.backend = backend
        self.versions = dict(versions)
        self.model_version = "-".join(self.versions[k] for k in ("masker", "painter"))
        self.sky_class = sky_class
        self.size_multiple = _size_multiple(painter)
        self.size = int(self.options.size or default_size)
        self._check_size(self.size)
        precision = self.options.precision if self.options.precision != "auto" else default_precision
        self.autocast_dtype = _autocast_dtype(precision, self.device)
        self.precision = _precision_name(self.autocast_dtype)
        channels_last = self.options.channels_last
        self.channels_last = self.device.type == "cuda" if channels_last is None else channels_last
        self.folded = {"masker": 0, "painter": 0}
        self.masker = self._prepare(masker, "masker")
        self.painter = self._prepare(painter, "painter")

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_checkpoints(
        cls,
        masker_path: str | Path,
        painter_path: str | Path,
        options: PipelineOptions | None = None,
        backend: str = CHECKPOINT_BACKEND,
        default_size: int = DEFAULT_SIZE,
    ) -> FloodPipeline:
        """Load both checkpoints once (validated, hash-checked) and prepare them. The masker's
        config may name its inference framing, size and precision (imported ClimateGAN weights:
        centre crop at 640 in float32, as the published script); ``options`` override them."""
        from generator.checkpoint import build_model_from_checkpoint, load_checkpoint

        masker_ckpt = load_checkpoint(masker_path, "masker")
        painter_ckpt = load_checkpoint(painter_path, "painter")
        masker = build_model_from_checkpoint(masker_ckpt)
        painter = build_model_from_checkpoint(painter_ckpt)
        return cls(
            masker,
            painter,
            backend=backend,
            versions={"masker": masker_ckpt.content_hash, "painter": painter_ckpt.content_hash},
            options=options,
            sky_class=getattr(masker_ckpt.config, "sky_class", effects.SKY_CLASS),
            default_size=getattr(masker_ckpt.config, "inference_size", default_size),
            default_frame=getattr(masker_ckpt.config, "inference_frame", "pad"),
            default_precision=getattr(masker_ckpt.config, "inference_precision", "auto"),
        )

    def _check_size(self, size: int) -> None:
        if size % self.size_multiple:
            raise ValueError(f"working size {size} must be a multiple of {self.size_multiple}")

    def _prepare(self, model: nn.Module, name: str) -> nn.Module:
        from generator.models.common import fold_spectral_norm

        model = model.eval()
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        fold_spectral_norm(model)  # W / sigma once, instead of at every forward
        has_batchnorm = any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        if self.options.fold_batchnorm and has_batchnorm:
            example = self._example_inputs(name)
            with torch.no_grad():
                before = output_tensors(model(*example))
                self.folded[name] = fold_batchnorm(model)
                after = output_tensors(model(*example))
            # Every output (mask, depth, segmentation; the painted image) is checked once, so a
            # fold that changed the model (a pairing fx got wrong) stops the pipeline here.
            for head, expected in before.items():
                tolerance = 1e-3 * (1.0 + expected.abs().max().item())
                if not torch.allclose(after[head], expected, rtol=1e-3, atol=tolerance):
                    raise RuntimeError(f"batch-norm folding changed the {name}'s {head} output; "
                                       "use PipelineOptions(fold_batchnorm=False)")
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if self.options.compile:
            kwargs = {"mode": self.options.compile_mode} if self.options.compile_mode else {}
            model = torch.compile(model, dynamic=False, **kwargs)
        return model

    def _example_inputs(self, name: str) -> tuple[Tensor, ...]:
        # Small, but large enough that the painter's coarsest level keeps 2x2 pixels
        # (instance norm refuses 1x1).
        side = 64 if name == "masker" else 2 * self.size_multiple
        image = torch.zeros(1, 3, side, side)
        return (image,) if name == "masker" else (image, torch.zeros(1, 1, side, side))

    # -- running -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _numerics(self) -> Iterator[None]:
        with torch.inference_mode():
            if self.autocast_dtype is None:
                yield
            else:
                with torch.autocast(self.device.type, dtype=self.autocast_dtype):
                    yield

    def _sync(self) -> None:
        if self.options.sync_timings and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _layout(self, t: Tensor) -> Tensor:
        return t.contiguous(memory_format=torch.channels_last) if self.channels_last else t

    def run_models(self, x: Tensor, event: str = "flood", threshold: float = 0.5,
                   timings: dict[str, float] | None = None) -> dict[str, Tensor]:
        """The device part on a prepared batch ``x`` (N,3,S,S) in [-1, 1].

        Returns float32 tensors: ``mask_probability``, and for a flood ``painted`` (N,3,S,S);
        for smog ``depth``; for wildfire ``segmentation`` (N,1,S,S class ids). Used by
        :meth:`flood_batch` and by the throughput benchmark.
        """
        if event not in EVENTS:
            raise ValueError(f"event must be one of {EVENTS}, got {event!r}")
        timings = {} if timings is None else timings
        out: dict[str, Tensor] = {}
        with self._numerics():
            x = self._layout(x.to(self.device, non_blocking=True))
            start = time.perf_counter()
            masks = self.masker(x)
            probability = masks.mask.float()
            out["mask_probability"] = probability
            if event == "smog":
                if masks.depth is None:
                    raise ValueError("smog needs a masker with a depth head")
                out["depth"] = masks.depth.float()
            if event == "wildfire":
                if masks.segmentation is None:
                    raise ValueError("wildfire needs a masker with a segmentation head")
                out["segmentation"] = masks.segmentation.argmax(dim=1, keepdim=True).float()
            self._sync()
            timings["masker"] = (time.perf_counter() - start) * 1000
            if event == "flood":
                start = time.perf_counter()
                binary = (probability >= threshold).to(x.dtype)
                painted = self.painter(self._layout(x * (1 - binary)), self._layout(binary))
                out["painted"] = painted.float()
                self._sync()
                timings["painter"] = (time.perf_counter() - start) * 1000
        return out

    def flood_batch(
        self,
        images: Sequence[ImageInput],
        event: str = "flood",
        threshold: float = 0.5,
        seed: int | Sequence[int] | None = None,
        size: int | None = None,
    ) -> list[FloodOutput]:
        """Flood (or smog / wildfire) ``images`` together; each result has its input's size.

        ``seed``: one per image or one for all (default 0); the networks are deterministic, the
        seed picks the wildfire colour and any randomness of a backend. ``size`` overrides the
        working size for this call.
        """
        if event not in EVENTS:
            raise ValueError(f"event must be one of {EVENTS}, got {event!r}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be in [0, 1]")
        if not images:
            return []
        size = int(size or self.size)
        self._check_size(size)
        seeds = _seeds(seed, len(images))
        timings: dict[str, float] = {}
        total_start = start = time.perf_counter()

        photos = [as_rgb_array(image) for image in images]
        originals, framings, squares = [], [], []
        for photo in photos:
            framing = compute_framing(photo.shape[0], photo.shape[1], size, self.frame)
            original = torch.from_numpy(photo).to(self.device).permute(2, 0, 1)[None]
            squares.append(frame_image(original.float() / 127.5 - 1.0, framing))
            originals.append(original)
            framings.append(framing)
        batch = torch.cat(squares)
        self._sync()
        timings["preprocess"] = (time.perf_counter() - start) * 1000

        maps = self.run_models(batch, event, threshold, timings)

        start = time.perf_counter()
        results = []
        for i, (original, framing) in enumerate(zip(originals, framings, strict=True)):
            results.append(self._finish(event, i, original, framing, maps, threshold, seeds[i]))
        self._sync()
        timings["postprocess"] = (time.perf_counter() - start) * 1000
        timings["total"] = (time.perf_counter() - total_start) * 1000
        rounded = {key: round(value, 3) for key, value in timings.items()}

        outputs = []
        for (image, mask), framing, item_seed in zip(results, framings, seeds, strict=True):
            params = {"event": event, "threshold": float(threshold), "size": size,
                      "frame": framing.mode, "seed": item_seed,
                      "precision": self.precision}
            outputs.append(FloodOutput(image=image, mask=mask, event=event, backend=self.backend,
                                       model_version=self.model_version, params=params,
                                       timings_ms=dict(rounded), batch_size=len(images),
                                       versions=dict(self.versions)))
        return outputs

    def _finish(self, event: str, i: int, original: Tensor, framing: Framing,
                maps: dict[str, Tensor], threshold: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Bring one item back to its original size; returns (image, mask) uint8 arrays."""
        photo = original[0].permute(1, 2, 0)  # (H, W, 3) uint8 on the device
        if event == "flood":
            # -1 outside a crop: never water, whatever the threshold (even 0).
            probability = unframe(maps["mask_probability"][i:i + 1], framing, -1.0)
            water = probability[0, 0] >= threshold
            painted = unframe(maps["painted"][i:i + 1], framing, 0.0)[0].permute(1, 2, 0)
            painted = ((painted.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
            result = torch.where(water[..., None], painted, photo)
            mask = water.to(torch.uint8) * 255
            return result.cpu().numpy(), mask.cpu().numpy()
        rgb = photo.cpu().numpy()
        if event == "smog":
            depth = unframe(maps["depth"][i:i + 1], framing, "replicate")[0, 0].cpu().double().numpy()
            image = effects.smog(rgb, depth)
            haze = 1.0 - np.exp(-effects.SMOG_BETA * effects.smog_distance_map(depth))
            return image, _to_uint8_map(haze)
        # Wildfire. The sky weight is a dilation by 12% of the image and a very wide blur (sigma
        # 140 px at 640), so it is smooth: it is computed on the labels at a shorter side of
        # FIRE_WEIGHT_SIDE (effects scales dilation and blur with the size) and upsampled, then
        # blended at full resolution as effects.wildfire does. Dilating with a disk of radius
        # 77 px at 640 takes seconds per image; at 160 px it takes milliseconds.
        labels = maps["segmentation"][i:i + 1]
        if framing.mode == "pad":
            labels = labels[..., framing.top:framing.top + framing.resized_height,
                            framing.left:framing.left + framing.resized_width]
        else:
            labels = unframe(labels, replace(framing, height=framing.resized_height,
                                             width=framing.resized_width),
                             "replicate", mode="nearest")
        scale = min(1.0, FIRE_WEIGHT_SIDE / min(labels.shape[-2:]))
        labels = _resize(labels, max(1, round(labels.shape[-2] * scale)),
                         max(1, round(labels.shape[-1] * scale)), mode="nearest")
        weight = effects.fire_sky_weight(labels[0, 0].round().long().cpu().numpy(), self.sky_class)
        weight_t = torch.from_numpy(weight)[None, None].float()
        weight = _resize(weight_t, framing.height, framing.width)[0, 0].clamp(0, 1).double().numpy()
        image = wildfire_blend(rgb, weight, seed)
        return image, _to_uint8_map(weight * effects.FIRE_OPACITY)


def wildfire_blend(rgb: np.ndarray, sky_weight: np.ndarray, seed: int) -> np.ndarray:
    """The spec's wildfire from a precomputed sky weight (as :func:`generator.effects.wildfire`:
    colour grade, then (255, G, 0) with G drawn from [100, 150] by ``seed``, opacity 200/255)."""
    fire_green = int(np.random.default_rng(seed).integers(100, 151))
    fire = np.array([255, fire_green, 0], np.float64) / 255.0
    graded = effects.wildfire_colour_grade(rgb.astype(np.float64) / 255.0)
    alpha = (effects.FIRE_OPACITY * sky_weight)[..., None]
    out = (1 - alpha) * graded + alpha * fire
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


def _to_uint8_map(values: np.ndarray) -> np.ndarray:
    return (np.clip(values, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def output_tensors(output: Any) -> dict[str, Tensor]:
    """Every tensor a model returns, by head: a masker's fields (``mask``, ``depth``…) or ``image``."""
    if isinstance(output, Tensor):
        return {"image": output}
    return {head: value for head, value in output._asdict().items() if isinstance(value, Tensor)}


def _seeds(seed: int | Sequence[int] | None, count: int) -> list[int]:
    if seed is None:
        return [0] * count
    if isinstance(seed, int | np.integer):
        return [int(seed)] * count
    seeds = [int(s) for s in seed]
    if len(seeds) != count:
        raise ValueError(f"{len(seeds)} seeds for {count} images")
    return seeds


def _precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


PipelineFactory = Callable[[], FloodPipeline]
