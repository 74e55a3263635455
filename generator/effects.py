"""Smog and wildfire from the masker's depth and segmentation heads (spec: "Other events").

Both functions take an sRGB image as a numpy array ``(H, W, 3)`` (uint8 in [0, 255] or float in
[0, 1]) or a torch tensor ``(3, H, W)`` / ``(N, 3, H, W)`` in [0, 1], and return the same kind,
shape and dtype family they were given (uint8 in, uint8 out; float in, float out).

- :func:`smog` follows HazeRD: linear RGB, a distance map from depth (normalize to [0.3, 1],
  invert, renormalize to [0.1, 1]), transmission ``t = exp(-beta d)`` with ``beta = 2``, airlight
  ``A = 0.76``, back to sRGB, then a light yellow tint (224, 192, 29) at alpha 20/255.
- :func:`wildfire` shifts colours towards red (R +40, G -10, B -20 on the 0-255 scale), contrast
  x1.5 about mid-grey, brightness x0.95, and blends a uniform red-orange (255, G, 0) with
  opacity 200/255 into the sky region (from segmentation, lowest third ignored), dilated by ~12%
  of the image size and blurred by a wide Gaussian (kernel ~281 px, sigma ~140 at 640 px, scaled
  to the image size).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SKY_CLASS = 9
SMOG_BETA = 2.0
SMOG_AIRLIGHT = 0.76
SMOG_TINT = (224, 192, 29)
SMOG_TINT_ALPHA = 20 / 255
FIRE_SHIFT = (40, -10, -20)
FIRE_CONTRAST = 1.5
FIRE_BRIGHTNESS = 0.95
FIRE_OPACITY = 200 / 255
FIRE_DILATION_FRACTION = 0.12
#: Gaussian blur of the sky mask at the 640-px working size; scaled with the image size.
FIRE_BLUR_KERNEL_640 = 281
FIRE_BLUR_SIGMA_640 = 140.0


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 decoding of sRGB values in [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 encoding of linear values in [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def _normalize(x: np.ndarray, low: float, high: float) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    if hi - lo < 1e-12:
        return np.full_like(x, low, dtype=np.float64)
    return low + (x - lo) * (high - low) / (hi - lo)


def smog_distance_map(depth: np.ndarray) -> np.ndarray:
    """HazeRD-style distance from the depth head: normalize to [0.3, 1], invert, to [0.1, 1].

    The depth head predicts *inverse* depth (near = large), so inverting it gives a quantity that
    grows with distance; far pixels get ``d = 1`` and the nearest ``d = 0.1``.
    """
    depth = np.asarray(depth, np.float64)
    return _normalize(1.0 / _normalize(depth, 0.3, 1.0), 0.1, 1.0)


def _as_float_hwc(image) -> tuple[np.ndarray, dict]:
    """Numpy HWC float64 in [0, 1] plus what is needed to give the result back in kind."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a project dependency
        torch = None
    if torch is not None and isinstance(image, torch.Tensor):
        batched = image.dim() == 4
        arr = image.detach().cpu().double()
        arr = arr if batched else arr[None]
        return arr.permute(0, 2, 3, 1).numpy(), {"torch": image, "batched": batched}
    arr = np.asarray(image)
    info = {"uint8": arr.dtype == np.uint8, "dtype": arr.dtype}
    arr = arr.astype(np.float64) / 255.0 if info["uint8"] else arr.astype(np.float64)
    return arr[None], info


def _restore(result: np.ndarray, info: dict):
    if "torch" in info:
        import torch

        src = info["torch"]
        out = torch.from_numpy(np.ascontiguousarray(result.transpose(0, 3, 1, 2)))
        out = out.to(device=src.device, dtype=src.dtype)
        return out if info["batched"] else out[0]
    result = result[0]
    if info["uint8"]:
        return (np.clip(result, 0, 1) * 255 + 0.5).astype(np.uint8)
    return result.astype(info["dtype"])


def _per_image(values, count: int) -> list[np.ndarray]:
    try:
        import torch

        if isinstance(values, torch.Tensor):
            values = values.detach().cpu().double().numpy()
    except ImportError:  # pragma: no cover
        pass
    values = np.asarray(values)
    if count == 1 and values.ndim == 2:
        return [values]
    values = values.reshape(count, *values.shape[-2:])
    return list(values)


def smog(image, depth, beta: float = SMOG_BETA, airlight: float = SMOG_AIRLIGHT):
    """Add smog to ``image`` given the depth head's relative inverse depth ``depth`` (H, W).

    ``depth`` may be ``(H, W)``, ``(N, H, W)`` or ``(N, 1, H, W)`` (numpy or torch).
    """
    arr, info = _as_float_hwc(image)
    depths = _per_image(depth, len(arr))
    tint = np.asarray(SMOG_TINT, np.float64) / 255.0
    out = np.empty_like(arr)
    for i, (img, dep) in enumerate(zip(arr, depths, strict=True)):
        transmission = np.exp(-beta * smog_distance_map(dep))[..., None]
        linear = srgb_to_linear(img)
        hazy = transmission * linear + (1 - transmission) * airlight
        srgb = linear_to_srgb(hazy)
        out[i] = (1 - SMOG_TINT_ALPHA) * srgb + SMOG_TINT_ALPHA * tint
    return _restore(out, info)


def _gaussian_kernel_1d(kernel_size: int, sigma: float) -> np.ndarray:
    radius = kernel_size // 2
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def fire_sky_weight(segmentation: np.ndarray, sky_class: int = SKY_CLASS) -> np.ndarray:
    """Blend weight in [0, 1] of the fire colour: sky (upper two thirds), dilated, blurred."""
    seg = np.asarray(segmentation)
    h, w = seg.shape
    sky = seg == sky_class
    sky[h - h // 3:, :] = False  # the lowest third is never sky (reflections, misclassified water)
    size = min(h, w)
    radius = max(1, round(FIRE_DILATION_FRACTION * size))
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    disk = xx * xx + yy * yy <= radius * radius
    sky = ndimage.binary_dilation(sky, structure=disk)
    scale = size / 640.0
    kernel_size = max(3, int(round(FIRE_BLUR_KERNEL_640 * scale)) | 1)
    sigma = max(0.5, FIRE_BLUR_SIGMA_640 * scale)
    kernel = _gaussian_kernel_1d(kernel_size, sigma)
    weight = ndimage.convolve1d(sky.astype(np.float64), kernel, axis=0, mode="nearest")
    weight = ndimage.convolve1d(weight, kernel, axis=1, mode="nearest")
    return np.clip(weight, 0.0, 1.0)


def wildfire_colour_grade(img: np.ndarray) -> np.ndarray:
    """Red shift, contrast x1.5 about 0.5 and brightness x0.95 on an HWC float image in [0, 1]."""
    shifted = np.clip(img + np.asarray(FIRE_SHIFT, np.float64) / 255.0, 0, 1)
    contrasted = np.clip((shifted - 0.5) * FIRE_CONTRAST + 0.5, 0, 1)
    return np.clip(contrasted * FIRE_BRIGHTNESS, 0, 1)


def wildfire(image, segmentation, fire_green: int | None = None, seed: int = 0,
             sky_class: int = SKY_CLASS):
    """Wildfire look from the segmentation head (class ``sky_class`` = sky).

    ``fire_green`` is the green channel of the blended colour (255, G, 0); by default it is drawn
    uniformly from [100, 150] with ``seed``, so a result is reproducible from its parameters.
    """
    arr, info = _as_float_hwc(image)
    segs = _per_image(segmentation, len(arr))
    if fire_green is None:
        fire_green = int(np.random.default_rng(seed).integers(100, 151))
    if not 0 <= fire_green <= 255:
        raise ValueError("fire_green must be in [0, 255]")
    fire = np.array([255, fire_green, 0], np.float64) / 255.0
    out = np.empty_like(arr)
    for i, (img, seg) in enumerate(zip(arr, segs, strict=True)):
        graded = wildfire_colour_grade(img)
        alpha = (FIRE_OPACITY * fire_sky_weight(np.rint(seg).astype(np.int64), sky_class))[..., None]
        out[i] = (1 - alpha) * graded + alpha * fire
    return _restore(out, info)
