"""Datasets and image preparation shared by training, evaluation and inference.

Image geometry (spec: "the shorter side resized to 640, centre crop or pad; ... the result is
brought back to the input's size"):

- :func:`prepare_image` turns an image of any size into a ``size x size`` square and returns a
  :class:`Framing` describing how; ``mode="crop"`` resizes the shorter side to ``size`` and takes
  the centre, ``mode="pad"`` resizes the longer side to ``size`` and pads (nothing is lost).
- :func:`restore_size` inverts it for a model output (image or mask): back to the original
  resolution; with ``mode="crop"`` the parts outside the crop come from ``background`` (usually
  the original photo, so they stay untouched).

Both accept numpy arrays ``(H, W, C)`` / ``(H, W)`` (uint8 or float) and torch tensors
``(C, H, W)`` / ``(H, W)`` and give back the same kind. :func:`to_model_range` and
:func:`from_model_range` convert uint8 HWC images to ``[-1, 1]`` CHW float tensors and back.

Folder layouts:

- unlabelled photos (``ImageFolderDataset``): any ``*.png|jpg|jpeg|webp`` under the folder;
- flooded photos with water masks (``FloodedFolderDataset``, for the painter) and labelled
  masker evaluation sets (``LabelledMaskFolderDataset``): ``DIR/images/NAME.ext`` with
  ``DIR/masks/NAME.png``. Mask PNG values: 0 cannot-be-water, 1 or 255 must-be-water, 2 or 128
  may-be-water (ignored by the metrics); the painter treats "must" as water.
  :func:`write_sim_folder` exports simulated scenes in that layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from generator import simworld

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")

# --------------------------------------------------------------------------------------------
# Geometry: prepare / restore
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Framing:
    """How an image of ``height x width`` became a ``size x size`` model input."""

    height: int
    width: int
    size: int
    mode: str  # "crop" or "pad"
    resized_height: int
    resized_width: int
    top: int  # crop: offset of the square inside the resized image; pad: of the image inside
    left: int

    def as_dict(self) -> dict[str, int | str]:
        return dict(self.__dict__)


def compute_framing(height: int, width: int, size: int, mode: str = "crop") -> Framing:
    """The :class:`Framing` that :func:`prepare_image` uses for an image of that shape."""
    if mode not in ("crop", "pad"):
        raise ValueError(f"mode must be 'crop' or 'pad', got {mode!r}")
    if height < 1 or width < 1 or size < 1:
        raise ValueError("sizes must be positive")
    if mode == "crop":
        scale = size / min(height, width)
        rh, rw = max(size, round(height * scale)), max(size, round(width * scale))
        return Framing(height, width, size, mode, rh, rw, (rh - size) // 2, (rw - size) // 2)
    scale = size / max(height, width)
    rh, rw = min(size, max(1, round(height * scale))), min(size, max(1, round(width * scale)))
    return Framing(height, width, size, mode, rh, rw, (size - rh) // 2, (size - rw) // 2)


def _to_chw(img) -> tuple[torch.Tensor, dict]:
    """Float CHW tensor plus a note of the input's kind, for giving the result back."""
    if isinstance(img, torch.Tensor):
        info = {"torch": True, "dtype": img.dtype, "device": img.device, "hw": img.dim() == 2}
        t = img[None] if img.dim() == 2 else img
        return t.float(), info
    arr = np.asarray(img)
    info = {"torch": False, "dtype": arr.dtype, "hw": arr.ndim == 2}
    arr = arr[..., None] if arr.ndim == 2 else arr
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float(), info


def _from_chw(t: torch.Tensor, info: dict):
    if info["torch"]:
        t = t[0] if info["hw"] else t
        if not info["dtype"].is_floating_point:
            t = t.round().clamp(torch.iinfo(info["dtype"]).min, torch.iinfo(info["dtype"]).max)
        return t.to(device=info["device"], dtype=info["dtype"])
    arr = t.numpy().transpose(1, 2, 0)
    arr = arr[..., 0] if info["hw"] else arr
    if np.issubdtype(info["dtype"], np.integer):
        limits = np.iinfo(info["dtype"])
        arr = np.clip(np.rint(arr), limits.min, limits.max)
    elif info["dtype"] == np.bool_:
        arr = arr >= 0.5
    return arr.astype(info["dtype"])


def _resize(t: torch.Tensor, height: int, width: int, nearest: bool) -> torch.Tensor:
    if t.shape[-2:] == (height, width):
        return t
    if nearest:
        return F.interpolate(t[None], size=(height, width), mode="nearest-exact")[0]
    return F.interpolate(t[None], size=(height, width), mode="bilinear", align_corners=False,
                         antialias=True)[0]


def prepare_image(img, size: int, mode: str = "crop", nearest: bool = False):
    """Resize/crop (or pad) ``img`` to ``size x size``; returns ``(square, framing)``.

    ``nearest=True`` for label maps (segmentation, masks); padding is zeros.
    """
    t, info = _to_chw(img)
    framing = compute_framing(t.shape[-2], t.shape[-1], size, mode)
    resized = _resize(t, framing.resized_height, framing.resized_width, nearest)
    if mode == "crop":
        out = resized[:, framing.top:framing.top + size, framing.left:framing.left + size]
    else:
        out = torch.zeros((t.shape[0], size, size), dtype=t.dtype)
        out[:, framing.top:framing.top + framing.resized_height,
            framing.left:framing.left + framing.resized_width] = resized
    return _from_chw(out.contiguous(), info), framing


def restore_size(square, framing: Framing, background=None, nearest: bool = False):
    """Bring a ``size x size`` output back to the original ``height x width``.

    ``mode="pad"``: drop the padding and resize. ``mode="crop"``: resize the square to the part of
    the original it came from and paste it into ``background`` (same kind and channels as
    ``square``; zeros when ``None``), so the pixels outside the crop keep their original values.
    """
    t, info = _to_chw(square)
    if t.shape[-2:] != (framing.size, framing.size):
        raise ValueError(f"expected a {framing.size}x{framing.size} input, got {tuple(t.shape)}")
    if framing.mode == "pad":
        inner = t[:, framing.top:framing.top + framing.resized_height,
                  framing.left:framing.left + framing.resized_width]
        return _from_chw(_resize(inner, framing.height, framing.width, nearest).contiguous(), info)
    scale_y = framing.height / framing.resized_height
    scale_x = framing.width / framing.resized_width
    top, bottom = round(framing.top * scale_y), round((framing.top + framing.size) * scale_y)
    left, right = round(framing.left * scale_x), round((framing.left + framing.size) * scale_x)
    bottom, right = min(bottom, framing.height), min(right, framing.width)
    if background is None:
        canvas = torch.zeros((t.shape[0], framing.height, framing.width))
    else:
        canvas, _ = _to_chw(background)
        canvas = canvas.clone()
        if canvas.shape != (t.shape[0], framing.height, framing.width):
            raise ValueError(f"background {tuple(canvas.shape)} does not match the framing")
    canvas[:, top:bottom, left:right] = _resize(t, bottom - top, right - left, nearest)
    return _from_chw(canvas, info)


def to_model_range(image: np.ndarray) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` -> float ``(3, H, W)`` in [-1, 1]."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise TypeError("to_model_range expects a uint8 image")
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float() / 127.5 - 1.0


def from_model_range(tensor: torch.Tensor) -> np.ndarray:
    """float ``(3, H, W)`` in [-1, 1] -> uint8 ``(H, W, 3)``."""
    arr = ((tensor.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
    return arr.transpose(1, 2, 0)


def load_image(path: str | Path) -> np.ndarray:
    """An RGB uint8 ``(H, W, 3)`` array from an image file (EXIF rotation applied)."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def load_mask_labels(path: str | Path) -> np.ndarray:
    """Mask labels 0/1/2 from a PNG holding 0/1/2 or 0/255 (must) and 128 (may)."""
    from PIL import Image

    with Image.open(path) as im:
        raw = np.asarray(im.convert("L")).astype(np.int64)
    labels = np.zeros(raw.shape, np.uint8)
    if raw.max(initial=0) <= 2:
        labels[:] = raw
    else:
        labels[raw >= 192] = 1
        labels[(raw >= 64) & (raw < 192)] = 2
    return labels


# --------------------------------------------------------------------------------------------
# Simulated world
# --------------------------------------------------------------------------------------------


def relative_inverse_depth(depth: np.ndarray) -> np.ndarray:
    """Depth target of the masker: inverse depth scaled to [0, 1] per image (1 = nearest)."""
    inv = 1.0 / np.maximum(depth, 1e-3)
    lo, hi = float(inv.min()), float(inv.max())
    return ((inv - lo) / max(hi - lo, 1e-8)).astype(np.float32)


class SimWorldDataset(Dataset):
    """Scenes ``seed_offset .. seed_offset + length - 1`` of the simulated world.

    Each item is a dict of tensors: ``image`` (3, S, S) in [-1, 1], ``depth`` (1, S, S) relative
    inverse depth in [0, 1], ``segmentation`` (S, S) int64, ``mask`` (1, S, S) float 0/1 for the
    item's water height, ``flooded`` (3, S, S) in [-1, 1], ``water_height`` (scalar) and ``seed``.

    ``water_height`` is a fixed level (metres), a ``(low, high)`` range drawn uniformly per scene,
    or a list of levels drawn from per scene (deterministically from the seed). A fixed level is
    what the masker trains on: the mask must be a function of the dry image.
    ``cache=True`` keeps rendered items in memory (rendering dominates small CPU runs).
    """

    def __init__(self, size: int = 128, length: int = 1000, seed_offset: int = 0,
                 domain: str = "sim", water_height: float | Sequence[float] = 0.5,
                 shadows: bool = True, cache: bool = True) -> None:
        if domain not in simworld.DOMAINS:
            raise ValueError(f"domain must be one of {simworld.DOMAINS}")
        self.size, self.length, self.seed_offset = int(size), int(length), int(seed_offset)
        self.domain, self.water_height, self.shadows = domain, water_height, shadows
        self._cache: dict[int, dict[str, torch.Tensor]] | None = {} if cache else None

    def __len__(self) -> int:
        return self.length

    def height_for(self, seed: int) -> float:
        spec = self.water_height
        if isinstance(spec, (int, float)):
            return float(spec)
        rng = np.random.default_rng([seed, 424242])
        spec = list(spec)
        if len(spec) == 2 and not isinstance(self.water_height, list):
            return float(rng.uniform(spec[0], spec[1]))
        return float(spec[int(rng.integers(len(spec)))])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        seed = self.seed_offset + index
        level = self.height_for(seed)
        sample = simworld.render_scene(seed, self.size, self.domain, (level,), self.shadows)
        item = {
            "image": to_model_range(sample.image),
            "depth": torch.from_numpy(relative_inverse_depth(sample.depth))[None],
            "segmentation": torch.from_numpy(sample.segmentation.astype(np.int64)),
            "mask": torch.from_numpy(sample.masks[0].astype(np.float32))[None],
            "flooded": to_model_range(sample.flooded[0]),
            "water_height": torch.tensor(level, dtype=torch.float32),
            "seed": torch.tensor(seed),
        }
        if self._cache is not None:
            self._cache[index] = item
        return item


class ImageFolderDataset(Dataset):
    """Unlabelled photos from a folder (recursively), prepared to ``size x size``: ``{"image"}``."""

    def __init__(self, root: str | Path, size: int = 128, mode: str = "crop") -> None:
        self.root = Path(root)
        self.paths = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {self.root}")
        self.size, self.mode = size, mode

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        square, _ = prepare_image(load_image(self.paths[index]), self.size, self.mode)
        return {"image": to_model_range(square)}


def _paired_paths(root: Path) -> list[tuple[Path, Path]]:
    images, masks = root / "images", root / "masks"
    if not images.is_dir() or not masks.is_dir():
        raise FileNotFoundError(f"{root} must contain images/ and masks/ folders")
    pairs = []
    for path in sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        mask = masks / f"{path.stem}.png"
        if not mask.exists():
            raise FileNotFoundError(f"no mask {mask} for {path}")
        pairs.append((path, mask))
    if not pairs:
        raise FileNotFoundError(f"no images under {images}")
    return pairs


class LabelledMaskFolderDataset(Dataset):
    """Photos with 0/1/2 mask labels (``DIR/images``, ``DIR/masks``): ``{"image", "labels"}``."""

    def __init__(self, root: str | Path, size: int = 128) -> None:
        self.pairs = _paired_paths(Path(root))
        self.size = size

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image_path, mask_path = self.pairs[index]
        image, _ = prepare_image(load_image(image_path), self.size)
        labels, _ = prepare_image(load_mask_labels(mask_path), self.size, nearest=True)
        return {"image": to_model_range(image), "labels": torch.from_numpy(labels.astype(np.int64))}


class FloodedFolderDataset(LabelledMaskFolderDataset):
    """Flooded photos with water masks for the painter: ``{"image", "mask"}`` (mask = "must")."""

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = super().__getitem__(index)
        return {"image": item["image"], "mask": (item["labels"] == 1).float()[None]}


def write_sim_folder(root: str | Path, count: int, size: int = 128, seed_offset: int = 0,
                     domain: str = "sim", water_height: float = 0.5, flooded: bool = False,
                     ) -> Path:
    """Export simulated scenes as ``root/images/*.png`` + ``root/masks/*.png`` (0/255).

    ``flooded=False`` writes dry images (a labelled masker evaluation set); ``flooded=True`` the
    flooded renders (painter training data).
    """
    from PIL import Image

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for seed in range(seed_offset, seed_offset + count):
        sample = simworld.render_scene(seed, size, domain, (water_height,))
        Image.fromarray(sample.flooded[0] if flooded else sample.image).save(
            root / "images" / f"scene_{seed:06d}.png")
        Image.fromarray(sample.masks[0].astype(np.uint8) * 255).save(
            root / "masks" / f"scene_{seed:06d}.png")
    return root


def image_grid(rows: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    """Tile uint8 HWC images (greyscale/bool masks are expanded) into one uint8 grid image."""
    tiles = []
    for row in rows:
        converted = []
        for tile in row:
            arr = np.asarray(tile)
            if arr.dtype == np.bool_ or arr.ndim == 2:
                arr = arr.astype(np.float32)
                arr = (np.clip(arr, 0, 1) * 255 if arr.max(initial=0) <= 1 else arr)
                arr = np.repeat(arr.astype(np.uint8)[..., None], 3, axis=2)
            converted.append(arr.astype(np.uint8))
        tiles.append(np.concatenate(converted, axis=1))
    width = max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0))) for t in tiles]
    return np.concatenate(tiles, axis=0)
