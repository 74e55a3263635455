"""The reference backend: what floods photos when no trained checkpoint is configured.

Used by the demo, CI and a new install. In order of preference:

1. ``reference-sim-tiny``: the tiny masker and painter that this project's own training command
   trained on the simulated world (``generator/weights/masker_tiny_sim.pt`` and
   ``painter_tiny_sim.pt``, see the README there). They were trained at 128x128, and that is
   their working size here: on held-out "real"-domain simulated street scenes their mask IoU is
   0.89 at 128 and falls to 0.65 at 256 and 0.42 at 640 (receptive field and ASPP rates are
   tuned to 128), so the result is upsampled instead. Version: the two checkpoints' content
   hashes.
2. ``reference-nonlearned`` (when those files are absent, or on request): a documented renderer
   with no learned weights, plugged into the same pipeline as a masker-like and a painter-like
   module, so batching, compositing, smog and wildfire run the same code:

   - :class:`HorizonMasker` estimates the horizon of each image as the row that best separates a
     brighter top from a darker bottom (the sky/ground split of street scenes, searched between
     20% and 70% of the height), puts a flat water line ``water_level`` of the way from the
     horizon to the bottom (with a slight sinusoidal wobble) and floods everything below it.
     Its "depth" is a ground-plane inverse depth (0 at the horizon, 1 at the bottom row; the sky
     far) and its "segmentation" labels the rows above the horizon sky, the rows below road.
   - :class:`WaterPainter` paints the water: a mirror image of the scene above the water line
     (reflected about each column's water line, displaced horizontally by sinusoidal ripples that
     grow towards the camera), mixed by a Fresnel-like weight (more reflection near the horizon,
     more murky body colour near the camera) with a brown-green water colour.

   Version: SHA-256 of these classes' source code and their parameters, so any change to the
   renderer is a new version.

Every output records its backend, version and parameters (see :class:`generator.pipeline.FloodOutput`).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from generator.config import SKY_CLASS
from generator.models.masker import MaskerOutput
from generator.pipeline import DEFAULT_SIZE, FloodPipeline, PipelineOptions

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
REFERENCE_MASKER_FILE = "masker_tiny_sim.pt"
REFERENCE_PAINTER_FILE = "painter_tiny_sim.pt"
#: Training resolution of the tiny reference checkpoints (generator/weights/README.md).
REFERENCE_SIZE = 128
LEARNED_BACKEND = "reference-sim-tiny"
NONLEARNED_BACKEND = "reference-nonlearned"
ROAD_CLASS = 1
NUM_CLASSES = 11


@dataclass(frozen=True)
class RendererParams:
    """Parameters of the non-learned renderer (all part of its version hash)."""

    water_level: float = 0.35  # fraction of the way from the horizon down to the bottom row
    horizon_search: tuple[float, float] = (0.2, 0.7)
    wobble_amplitude: float = 0.004  # of the image height
    wobble_period: float = 0.37  # of the image width
    edge_softness: float = 1.5  # pixels of the mask's logistic edge
    ripple_amplitude: float = 0.006  # horizontal displacement, of the width, at the bottom row
    ripple_period: float = 0.025  # of the height
    water_colour: tuple[float, float, float] = (0.33, 0.30, 0.21)  # murky brown-green, sRGB 0-1
    reflection_near_horizon: float = 0.75
    reflection_near_camera: float = 0.30
    reflection_darkening: float = 0.85


def _row_grid(x: Tensor) -> Tensor:
    """(1, 1, H, 1) row index as float."""
    return torch.arange(x.shape[-2], device=x.device, dtype=x.dtype).reshape(1, 1, -1, 1)


def estimate_horizon(x: Tensor, search: tuple[float, float] = (0.2, 0.7)) -> Tensor:
    """Row of the horizon per image of ``x`` (N,3,H,W in [-1, 1]), as a float (N,).

    The row that maximises (mean luminance above) - (mean luminance below): the split between a
    bright sky and a darker ground, searched between ``search`` fractions of the height.
    """
    luminance = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).float().mean(dim=2)  # (N, H)
    height = luminance.shape[1]
    cumulative = luminance.cumsum(dim=1)
    rows = torch.arange(1, height, device=x.device, dtype=torch.float32)
    above = cumulative[:, :-1] / rows
    below = (cumulative[:, -1:] - cumulative[:, :-1]) / (height - rows)
    score = above - below  # score[:, k]: split after row k (k + 1 rows above)
    low, high = (max(1, int(search[0] * height)), max(2, int(search[1] * height)))
    best = score[:, low - 1:high - 1].argmax(dim=1) + low
    return best.float()


class HorizonMasker(nn.Module):
    """Non-learned masker: water below a flat line under the estimated horizon (see module doc)."""

    size_multiple = 8

    def __init__(self, params: RendererParams | None = None) -> None:
        super().__init__()
        self.params = params or RendererParams()

    def forward(self, x: Tensor) -> MaskerOutput:
        p = self.params
        n, _, height, width = x.shape
        horizon = estimate_horizon(x, p.horizon_search).reshape(n, 1, 1, 1)
        columns = torch.arange(width, device=x.device, dtype=torch.float32).reshape(1, 1, 1, -1)
        wobble = p.wobble_amplitude * height * torch.sin(2 * math.pi * columns / (p.wobble_period * width))
        waterline = horizon + p.water_level * (height - horizon) + wobble
        rows = _row_grid(x).float()
        mask_logits = (rows - waterline) / p.edge_softness
        below = ((rows - horizon) / (height - horizon)).clamp(0, 1)
        depth = torch.where(rows > horizon, below, torch.zeros_like(below)).expand(n, 1, height, width)
        sky = (rows <= horizon).expand(n, 1, height, width)
        labels = torch.where(sky, SKY_CLASS, ROAD_CLASS).long()
        segmentation = 10.0 * F.one_hot(labels[:, 0], NUM_CLASSES).permute(0, 3, 1, 2).float()
        mask_logits = mask_logits.expand(n, 1, height, width).contiguous()
        return MaskerOutput(mask=torch.sigmoid(mask_logits), mask_logits=mask_logits,
                            depth=depth.contiguous(), segmentation=segmentation)


class WaterPainter(nn.Module):
    """Non-learned painter: ripple-displaced reflection of the scene above each column's water
    line, mixed with a murky water colour (see module doc). Same call as the learned painter."""

    size_multiple = 8

    def __init__(self, params: RendererParams | None = None) -> None:
        super().__init__()
        self.params = params or RendererParams()

    def forward(self, masked_image: Tensor, mask: Tensor) -> Tensor:
        p = self.params
        image = masked_image.float()
        n, _, height, width = image.shape
        rows = _row_grid(image)  # (1, 1, H, 1)
        wet = mask.float() >= 0.5
        # Water line per column: the first wet row (H where the column is dry).
        waterline = torch.where(wet, rows, torch.full_like(rows, float(height))).amin(dim=2, keepdim=True)
        depth_below = (rows - waterline).clamp(min=0)  # rows under the water line
        span = (height - waterline).clamp(min=1)
        nearness = (depth_below / span).clamp(0, 1)  # 0 at the water line, 1 at the bottom
        source_row = (2 * waterline - rows - 1).clamp(min=0)
        columns = torch.arange(width, device=image.device, dtype=torch.float32).reshape(1, 1, 1, -1)
        ripple = (p.ripple_amplitude * width * nearness
                  * torch.sin(2 * math.pi * depth_below / (p.ripple_period * height)
                              + 0.8 * torch.sin(2 * math.pi * columns / (0.21 * width))))
        source_col = (columns + ripple).clamp(0, width - 1)
        grid = torch.stack([source_col / max(width - 1, 1) * 2 - 1,
                            source_row.expand_as(source_col) / max(height - 1, 1) * 2 - 1], dim=-1)
        reflection = F.grid_sample(image, grid[:, 0].expand(n, -1, -1, -1), mode="bilinear",
                                   padding_mode="border", align_corners=True)
        body = torch.tensor(p.water_colour, device=image.device).reshape(1, 3, 1, 1) * 2 - 1
        weight = p.reflection_near_horizon + (p.reflection_near_camera - p.reflection_near_horizon) * nearness
        water = weight * (p.reflection_darkening * (reflection + 1) - 1) + (1 - weight) * body
        return water.clamp(-1, 1).to(masked_image.dtype)


def renderer_version(params: RendererParams | None = None) -> dict[str, str]:
    """Version hashes of the non-learned masker and painter: their source code + parameters."""
    params = params or RendererParams()
    blob = json.dumps(asdict(params), sort_keys=True)
    versions = {}
    for name, cls in (("masker", HorizonMasker), ("painter", WaterPainter)):
        source = inspect.getsource(cls) + inspect.getsource(estimate_horizon) + inspect.getsource(_row_grid)
        versions[name] = "nl" + hashlib.sha256((source + blob).encode()).hexdigest()[:14]
    return versions


def nonlearned_pipeline(options: PipelineOptions | None = None,
                        params: RendererParams | None = None) -> FloodPipeline:
    """The non-learned renderer as a :class:`FloodPipeline` (backend ``reference-nonlearned``)."""
    return FloodPipeline(HorizonMasker(params), WaterPainter(params), backend=NONLEARNED_BACKEND,
                         versions=renderer_version(params), options=options,
                         default_size=DEFAULT_SIZE)


def reference_weights(weights_dir: str | Path | None = None) -> tuple[Path, Path] | None:
    """The tiny reference checkpoints if both files exist, else None."""
    folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    masker, painter = folder / REFERENCE_MASKER_FILE, folder / REFERENCE_PAINTER_FILE
    return (masker, painter) if masker.is_file() and painter.is_file() else None


def reference_pipeline(options: PipelineOptions | None = None,
                       weights_dir: str | Path | None = None,
                       learned: bool | None = None) -> FloodPipeline:
    """The reference backend: the tiny simulated-world checkpoints when present (``learned``
    None or True; True raises if they are missing), else the non-learned renderer.

    Checkpoint files that exist but fail to load raise: a broken install must not silently
    change the backend that produced the study's images.
    """
    weights = reference_weights(weights_dir) if learned is not False else None
    if learned and weights is None:
        raise FileNotFoundError(f"no reference checkpoints in {weights_dir or WEIGHTS_DIR}")
    if weights is None:
        return nonlearned_pipeline(options)
    return FloodPipeline.from_checkpoints(*weights, options=options, backend=LEARNED_BACKEND,
                                          default_size=REFERENCE_SIZE)
