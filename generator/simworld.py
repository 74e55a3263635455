"""A procedural street-level world with exact ground truth for the masker.

Every sample is a first-person view from a street-view camera (~2.5 m high, small random
pitch/yaw/roll and field of view) of a straight street: asphalt road with lane markings, raised
sidewalks with a curb, raised lawns, box buildings with windows, cars, fences, trees, street
lamps, pedestrians and a sky with clouds. Rendering is vectorized ray casting in numpy against a
few analytic primitives (ground plane, axis-aligned boxes, spheres, vertical cylinders), so a
256x256 sample with three water levels takes a fraction of a second on one CPU core.

For each water height ``h`` (metres above the road surface) the flood mask is exact: a pixel is
water when its camera ray meets the plane ``y = h`` before any geometry, i.e. when the first
surface the ray hits lies below ``h`` (the camera is always above the water). The flooded render
replaces those pixels with a water shader: a murky brown/green body colour, submerged geometry
fading with the under-water path length, a Fresnel-weighted reflection of the scene and sky
(traced about the water plane) and procedural ripples perturbing the normal.

``domain="real"`` changes palettes, texture noise, lighting and adds camera post-processing
(blur, sensor noise, vignetting, colour cast), so that a second domain can stand in for unlabelled
real photos in domain-adaptation tests. Everything is deterministic for ``(seed, domain)``.

Segmentation classes (``CLASS_NAMES``, shared with ``generator.config.SEGMENTATION_CLASSES``;
sky is 9 as in the published masker)::

    0 water (only in flooded segmentations)  1 road  2 sidewalk  3 terrain (lawns, grass)
    4 building  5 vegetation  6 car  7 wall/fence  8 person  9 sky  10 other (street lamps)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from generator.config import SEGMENTATION_CLASSES

CLASS_NAMES: tuple[str, ...] = SEGMENTATION_CLASSES
NUM_CLASSES = len(CLASS_NAMES)
WATER, ROAD, SIDEWALK, TERRAIN, BUILDING, VEGETATION, CAR, FENCE, PERSON, SKY, OTHER = range(11)
assert CLASS_NAMES[SKY] == "sky" and CLASS_NAMES[OTHER] == "other" and CLASS_NAMES[WATER] == "water"
POLE = OTHER  # street lamps have no class of their own
#: Classes a flood covers first (used by the ground-intersection loss).
GROUND_CLASSES: tuple[int, ...] = (ROAD, SIDEWALK, TERRAIN)
#: Depth given to sky pixels (metres); also the distance at which geometry fades into haze.
FAR_DEPTH = 300.0
DEFAULT_WATER_HEIGHTS: tuple[float, ...] = (0.25, 0.5, 1.0)
DOMAINS = ("sim", "real")

# Material identifiers (how a primitive is textured).
(M_GROUND, M_SIDEWALK, M_LAWN, M_BUILDING, M_CAR_BODY, M_CAR_GLASS, M_WHEEL, M_FENCE, M_TRUNK,
 M_CANOPY, M_POLE, M_PERSON) = range(12)


@dataclass
class SimSample:
    """One rendered viewpoint with its ground truth.

    ``depth`` is the z-depth along the camera axis in metres (sky = ``FAR_DEPTH``);
    ``masks[k]`` / ``flooded[k]`` belong to ``water_heights[k]``.
    """

    image: np.ndarray  # (H, W, 3) uint8, the dry scene
    depth: np.ndarray  # (H, W) float32 metres
    segmentation: np.ndarray  # (H, W) uint8 class ids, see CLASS_NAMES
    water_heights: tuple[float, ...]
    masks: np.ndarray  # (K, H, W) bool, exact flood masks
    flooded: np.ndarray  # (K, H, W, 3) uint8 flooded renders
    seed: int
    domain: str
    camera: dict[str, float] = field(default_factory=dict)

    @property
    def inverse_depth(self) -> np.ndarray:
        """Relative inverse depth in (0, 1]: ``min_depth / depth`` (1 at the nearest pixel)."""
        return (self.depth.min() / self.depth).astype(np.float32)

    def flooded_segmentation(self, index: int) -> np.ndarray:
        """Segmentation of ``flooded[index]``: water pixels get class 0 (water)."""
        seg = self.segmentation.copy()
        seg[self.masks[index]] = WATER
        return seg

    def mask_for_height(self, height: float) -> np.ndarray:
        return self.masks[self.water_heights.index(height)]


# --------------------------------------------------------------------------------------------
# Procedural noise (integer hashing, so it is deterministic and needs no tables)
# --------------------------------------------------------------------------------------------


def _hash2(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    h = (ix.astype(np.int64).astype(np.uint32) * np.uint32(374761393)
         + iy.astype(np.int64).astype(np.uint32) * np.uint32(668265263)
         + np.uint32((seed * 2246822519) & 0xFFFFFFFF))
    h = (h ^ (h >> np.uint32(13))) * np.uint32(1274126177)
    h = h ^ (h >> np.uint32(16))
    return h.astype(np.float32) / np.float32(4294967296.0)


def value_noise(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Smooth value noise in [0, 1) on the integer lattice."""
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx = (x - x0).astype(np.float32)
    fy = (y - y0).astype(np.float32)
    fx = fx * fx * (3 - 2 * fx)
    fy = fy * fy * (3 - 2 * fy)
    a = _hash2(x0, y0, seed)
    b = _hash2(x0 + 1, y0, seed)
    c = _hash2(x0, y0 + 1, seed)
    d = _hash2(x0 + 1, y0 + 1, seed)
    return (a + (b - a) * fx) + ((c + (d - c) * fx) - (a + (b - a) * fx)) * fy


def fbm(x: np.ndarray, y: np.ndarray, seed: int, octaves: int = 3) -> np.ndarray:
    """Fractal sum of value noise, normalised to [0, 1)."""
    total = np.zeros(np.shape(x), np.float32)
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        total += amplitude * value_noise(x, y, seed + 101 * octave)
        norm += amplitude
        x = x * 2.03
        y = y * 2.03
        amplitude *= 0.5
    return total / norm


# --------------------------------------------------------------------------------------------
# Scene description
# --------------------------------------------------------------------------------------------


@dataclass
class _Scene:
    # primitive 0 is the ground plane y = 0; then boxes, spheres, cylinders in that order
    box_lo: np.ndarray
    box_hi: np.ndarray
    sphere_center: np.ndarray
    sphere_radius: np.ndarray
    cyl_center: np.ndarray  # (C, 2) x, z
    cyl_radius: np.ndarray
    cyl_y: np.ndarray  # (C, 2) bottom, top
    material: np.ndarray  # (P,) material id per primitive
    label: np.ndarray  # (P,) class id per primitive (ground is resolved per pixel)
    colour: np.ndarray  # (P, 3) base albedo in [0, 1]
    params: np.ndarray  # (P, 4) material parameters (window grid etc.)
    road_half: float
    sidewalk_outer: float
    lawn_outer_left: float
    lawn_outer_right: float
    sun: np.ndarray
    style: dict

    @property
    def n_boxes(self) -> int:
        return len(self.box_lo)

    @property
    def n_spheres(self) -> int:
        return len(self.sphere_radius)


def _style(domain: str, rng: np.random.Generator) -> dict:
    """Palettes and lighting for one domain (the 'real' one is muted, noisier and warmer)."""
    if domain == "sim":
        return {
            "facades": np.array([[0.85, 0.80, 0.70], [0.70, 0.75, 0.85], [0.90, 0.90, 0.88],
                                 [0.80, 0.55, 0.45], [0.65, 0.80, 0.70]], np.float32),
            "grass": np.array([0.30, 0.62, 0.22], np.float32),
            "asphalt": 0.32,
            "sidewalk": np.array([0.72, 0.72, 0.70], np.float32),
            "fence": np.array([0.85, 0.85, 0.85], np.float32),
            "canopy": np.array([0.20, 0.50, 0.15], np.float32),
            "sky_zenith": np.array([0.22, 0.45, 0.90], np.float32),
            "sky_horizon": np.array([0.75, 0.85, 0.97], np.float32),
            "water": np.array([0.30, 0.33, 0.22], np.float32),
            "noise_amp": 0.10,
            "cloud_cover": rng.uniform(0.2, 0.5),
            "sun_elevation": rng.uniform(0.5, 1.0),
            "ambient": 0.45,
            "sun_strength": 0.75,
            "haze": rng.uniform(250.0, 500.0),
        }
    if domain == "real":
        return {
            "facades": np.array([[0.55, 0.30, 0.24], [0.62, 0.58, 0.52], [0.45, 0.45, 0.47],
                                 [0.72, 0.66, 0.55], [0.50, 0.36, 0.28]], np.float32),
            "grass": np.array([0.36, 0.42, 0.22], np.float32),
            "asphalt": 0.26,
            "sidewalk": np.array([0.58, 0.56, 0.53], np.float32),
            "fence": np.array([0.45, 0.33, 0.22], np.float32),
            "canopy": np.array([0.24, 0.34, 0.16], np.float32),
            "sky_zenith": np.array([0.50, 0.58, 0.70], np.float32),
            "sky_horizon": np.array([0.82, 0.82, 0.80], np.float32),
            "water": np.array([0.36, 0.31, 0.20], np.float32),
            "noise_amp": 0.28,
            "cloud_cover": rng.uniform(0.45, 0.85),
            "sun_elevation": rng.uniform(0.25, 0.6),
            "ambient": 0.55,
            "sun_strength": 0.55,
            "haze": rng.uniform(120.0, 300.0),
        }
    raise ValueError(f"unknown domain {domain!r}; expected one of {DOMAINS}")


def _build_scene(rng: np.random.Generator, domain: str) -> _Scene:
    style = _style(domain, rng)
    boxes_lo: list[list[float]] = []
    boxes_hi: list[list[float]] = []
    box_meta: list[tuple[int, int, list[float], list[float]]] = []  # material, class, colour, params
    spheres: list[tuple[list[float], float, list[float]]] = []
    cylinders: list[tuple[float, float, float, float, float, int, int, list[float]]] = []

    def add_box(lo, hi, material, label, colour, params=(0.0, 0.0, 0.0, 0.0)):
        boxes_lo.append(list(lo))
        boxes_hi.append(list(hi))
        box_meta.append((material, label, list(colour), list(params)))

    road_half = float(rng.uniform(3.0, 6.0))
    sidewalk_width = float(rng.uniform(1.5, 3.0))
    curb = float(rng.uniform(0.12, 0.2))
    sidewalk_outer = road_half + sidewalk_width
    z_min, z_max = -40.0, 400.0
    lawn_outer = {}
    for side in (-1, 1):
        # sidewalk (raised, with a curb)
        x0, x1 = sorted((side * road_half, side * sidewalk_outer))
        add_box((x0, 0.0, z_min), (x1, curb, z_max), M_SIDEWALK, SIDEWALK, style["sidewalk"])
        # lawn strip between the sidewalk and the buildings, slightly raised
        lawn_depth = float(rng.uniform(0.0, 8.0))
        lawn_h = float(rng.uniform(0.03, 0.3))
        outer = sidewalk_outer + lawn_depth
        lawn_outer[side] = outer
        if lawn_depth > 0.2:
            x0, x1 = sorted((side * sidewalk_outer, side * (outer + 30.0)))
            add_box((x0, 0.0, z_min), (x1, lawn_h, z_max), M_LAWN, TERRAIN, style["grass"])
        # buildings along the street, with gaps
        z = float(rng.uniform(-25.0, -5.0))
        while z < 160.0:
            width = float(rng.uniform(6.0, 20.0))
            if rng.random() < 0.85:
                height = float(rng.uniform(4.0, 25.0))
                depth = float(rng.uniform(8.0, 16.0))
                front = outer + float(rng.uniform(0.0, 1.5))
                x0, x1 = sorted((side * front, side * (front + depth)))
                colour = style["facades"][rng.integers(len(style["facades"]))]
                colour = np.clip(colour * rng.uniform(0.8, 1.15), 0, 1)
                params = (rng.uniform(2.5, 4.0), rng.uniform(2.8, 3.5), rng.uniform(0.45, 0.7),
                          rng.uniform(0.0, 1000.0))
                add_box((x0, 0.0, z), (x1, height, z + width), M_BUILDING, BUILDING, colour, params)
            z += width + float(rng.uniform(0.0, 6.0))
        # fence along the lawn edge on some stretches
        if rng.random() < 0.6:
            fz0 = float(rng.uniform(-10.0, 30.0))
            fz1 = fz0 + float(rng.uniform(10.0, 60.0))
            fh = float(rng.uniform(0.8, 1.6))
            fx = side * (sidewalk_outer + 0.05)
            x0, x1 = sorted((fx, fx + side * 0.06))
            fence_colour = np.clip(style["fence"] * rng.uniform(0.8, 1.1), 0, 1)
            add_box((x0, 0.0, fz0), (x1, fh, fz1), M_FENCE, FENCE, fence_colour,
                    (rng.uniform(0.1, 0.2), 0.0, 0.0, 0.0))
        # trees on the lawn / sidewalk edge
        for _ in range(int(rng.integers(0, 6))):
            tz = float(rng.uniform(3.0, 120.0))
            tx = side * float(rng.uniform(sidewalk_outer - 0.6, max(outer, sidewalk_outer) + 0.5))
            trunk_h = float(rng.uniform(2.0, 4.0))
            radius = float(rng.uniform(1.3, 3.0))
            cylinders.append((tx, tz, float(rng.uniform(0.12, 0.28)), 0.0, trunk_h + radius * 0.5,
                              M_TRUNK, VEGETATION, [0.35, 0.25, 0.16]))
            canopy = np.clip(style["canopy"] * rng.uniform(0.75, 1.25), 0, 1)
            spheres.append(([tx, trunk_h + radius, tz], radius, list(canopy)))
        # street lamps at the curb
        for _ in range(int(rng.integers(0, 4))):
            pz = float(rng.uniform(5.0, 100.0))
            px = side * (road_half + 0.35)
            cylinders.append((px, pz, 0.08, 0.0, float(rng.uniform(5.0, 7.0)), M_POLE, POLE,
                              [0.4, 0.42, 0.45]))
        # pedestrians on the sidewalk
        for _ in range(int(rng.integers(0, 3))):
            pz = float(rng.uniform(4.0, 40.0))
            px = side * float(rng.uniform(road_half + 0.6, sidewalk_outer - 0.3))
            cylinders.append((px, pz, 0.22, curb, curb + float(rng.uniform(1.5, 1.9)), M_PERSON,
                              PERSON, list(rng.uniform(0.1, 0.8, 3))))
    # cars in the lanes (body, cabin, two axles)
    for _ in range(int(rng.integers(0, 7))):
        lane = float(rng.choice([-1.0, 1.0])) * float(rng.uniform(1.0, max(1.1, road_half - 1.1)))
        cz = float(rng.uniform(6.0, 80.0))
        length, width = float(rng.uniform(3.8, 4.8)), float(rng.uniform(1.6, 1.9))
        body_top = float(rng.uniform(0.9, 1.1))
        colour = rng.uniform(0.05, 0.95, 3)
        colour = colour if rng.random() < 0.6 else np.full(3, rng.uniform(0.1, 0.9))
        add_box((lane - width / 2, 0.28, cz), (lane + width / 2, body_top, cz + length), M_CAR_BODY,
                CAR, colour)
        add_box((lane - width / 2 + 0.1, body_top, cz + 0.2 * length),
                (lane + width / 2 - 0.1, body_top + 0.5, cz + 0.75 * length), M_CAR_GLASS, CAR,
                colour * 0.5)
        for axle in (0.18, 0.72):
            add_box((lane - width / 2 + 0.05, 0.0, cz + axle * length),
                    (lane + width / 2 - 0.05, 0.6, cz + axle * length + 0.65), M_WHEEL, CAR,
                    (0.05, 0.05, 0.05))

    n_b, n_s, n_c = len(boxes_lo), len(spheres), len(cylinders)
    n_prims = 1 + n_b + n_s + n_c
    material = np.zeros(n_prims, np.int64)
    label = np.zeros(n_prims, np.int64)
    colour = np.zeros((n_prims, 3), np.float32)
    params = np.zeros((n_prims, 4), np.float32)
    material[0], label[0] = M_GROUND, ROAD
    for i, (m, lab, col, par) in enumerate(box_meta):
        material[1 + i], label[1 + i], colour[1 + i], params[1 + i] = m, lab, col, par
    for i, (_, _, col) in enumerate(spheres):
        j = 1 + n_b + i
        material[j], label[j], colour[j] = M_CANOPY, VEGETATION, col
    for i, cyl in enumerate(cylinders):
        j = 1 + n_b + n_s + i
        material[j], label[j], colour[j] = cyl[5], cyl[6], cyl[7]
    elevation = style["sun_elevation"]
    azimuth = rng.uniform(0, 2 * math.pi)
    sun = np.array([math.cos(elevation) * math.cos(azimuth), math.sin(elevation),
                    math.cos(elevation) * math.sin(azimuth)], np.float32)
    return _Scene(
        box_lo=np.array(boxes_lo, np.float32).reshape(-1, 3),
        box_hi=np.array(boxes_hi, np.float32).reshape(-1, 3),
        sphere_center=np.array([s[0] for s in spheres], np.float32).reshape(-1, 3),
        sphere_radius=np.array([s[1] for s in spheres], np.float32),
        cyl_center=np.array([(c[0], c[1]) for c in cylinders], np.float32).reshape(-1, 2),
        cyl_radius=np.array([c[2] for c in cylinders], np.float32),
        cyl_y=np.array([(c[3], c[4]) for c in cylinders], np.float32).reshape(-1, 2),
        material=material, label=label, colour=colour, params=params,
        road_half=road_half, sidewalk_outer=sidewalk_outer,
        lawn_outer_left=lawn_outer[-1], lawn_outer_right=lawn_outer[1],
        sun=sun, style=style,
    )


# --------------------------------------------------------------------------------------------
# Ray casting
# --------------------------------------------------------------------------------------------


def _trace(scene: _Scene, origin: np.ndarray, direction: np.ndarray, t_min: float = 1e-3):
    """Nearest hit of each ray: distance (inf for none), primitive index (-1), normal."""
    n_rays = len(origin)
    best_t = np.full(n_rays, np.inf, np.float32)
    best_p = np.full(n_rays, -1, np.int64)
    ox, oy, oz = origin[:, 0:1], origin[:, 1:2], origin[:, 2:3]
    dx, dy, dz = direction[:, 0:1], direction[:, 1:2], direction[:, 2:3]

    # ground plane
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(dy[:, 0] < -1e-6, -oy[:, 0] / dy[:, 0], np.inf)
    hit = (t_ground > t_min) & (t_ground < best_t)
    best_t[hit], best_p[hit] = t_ground[hit], 0

    # axis-aligned boxes (slab method, one axis at a time to keep temporaries 2-D)
    if scene.n_boxes:
        safe = np.where(np.abs(direction) < 1e-9, 1e-9, direction)
        inv = (1.0 / safe).astype(np.float32)
        t_near = np.full((n_rays, scene.n_boxes), -np.inf, np.float32)
        t_far = np.full((n_rays, scene.n_boxes), np.inf, np.float32)
        for axis, o in enumerate((ox, oy, oz)):
            t1 = (scene.box_lo[None, :, axis] - o) * inv[:, axis:axis + 1]
            t2 = (scene.box_hi[None, :, axis] - o) * inv[:, axis:axis + 1]
            np.maximum(t_near, np.minimum(t1, t2), out=t_near)
            np.minimum(t_far, np.maximum(t1, t2), out=t_far)
        valid = (t_near <= t_far) & (t_near > t_min)
        t_box = np.where(valid, t_near, np.inf)
        idx = np.argmin(t_box, axis=1)
        t_sel = t_box[np.arange(n_rays), idx]
        hit = t_sel < best_t
        best_t[hit], best_p[hit] = t_sel[hit], 1 + idx[hit]

    # spheres
    offset = 1 + scene.n_boxes
    if scene.n_spheres:
        c = scene.sphere_center
        ocx, ocy, ocz = ox - c[None, :, 0], oy - c[None, :, 1], oz - c[None, :, 2]
        b = ocx * dx + ocy * dy + ocz * dz
        cc = ocx * ocx + ocy * ocy + ocz * ocz - scene.sphere_radius[None] ** 2
        disc = b * b - cc
        with np.errstate(invalid="ignore"):
            t_sph = -b - np.sqrt(disc)
        t_sph = np.where((disc > 0) & (t_sph > t_min), t_sph, np.inf)
        idx = np.argmin(t_sph, axis=1)
        t_sel = t_sph[np.arange(n_rays), idx]
        hit = t_sel < best_t
        best_t[hit], best_p[hit] = t_sel[hit], offset + idx[hit]

    # vertical cylinders (side and top cap)
    offset += scene.n_spheres
    if len(scene.cyl_radius):
        cx, cz = scene.cyl_center[None, :, 0], scene.cyl_center[None, :, 1]
        r2 = scene.cyl_radius[None] ** 2
        y0, y1 = scene.cyl_y[None, :, 0], scene.cyl_y[None, :, 1]
        px, pz = ox - cx, oz - cz
        a = dx * dx + dz * dz + 1e-12
        b = px * dx + pz * dz
        cc = px * px + pz * pz - r2
        disc = b * b - a * cc
        with np.errstate(invalid="ignore"):
            t_side = (-b - np.sqrt(disc)) / a
        y_side = oy + t_side * dy
        t_side = np.where((disc > 0) & (t_side > t_min) & (y_side >= y0) & (y_side <= y1),
                          t_side, np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_cap = (y1 - oy) / np.where(np.abs(dy) < 1e-9, -1e-9, dy)
        qx, qz = px + t_cap * dx, pz + t_cap * dz
        t_cap = np.where((t_cap > t_min) & (qx * qx + qz * qz <= r2), t_cap, np.inf)
        t_cyl = np.minimum(t_side, t_cap)
        idx = np.argmin(t_cyl, axis=1)
        t_sel = t_cyl[np.arange(n_rays), idx]
        hit = t_sel < best_t
        best_t[hit], best_p[hit] = t_sel[hit], offset + idx[hit]

    normal = _normals(scene, origin + best_t[:, None] * direction, best_p, direction)
    return best_t, best_p, normal


def _normals(scene: _Scene, point: np.ndarray, prim: np.ndarray, direction: np.ndarray):
    normal = np.zeros_like(point)
    normal[:, 1] = 1.0  # ground plane and misses
    n_b, n_s = scene.n_boxes, scene.n_spheres
    is_box = (prim >= 1) & (prim <= n_b)
    if is_box.any():
        j = prim[is_box] - 1
        p = point[is_box]
        lo, hi = scene.box_lo[j], scene.box_hi[j]
        # the face whose plane is closest to the hit point
        dist = np.concatenate([np.abs(p - lo), np.abs(p - hi)], axis=1)
        face = np.argmin(dist, axis=1)
        n = np.zeros_like(p)
        n[np.arange(len(p)), face % 3] = np.where(face < 3, -1.0, 1.0)
        normal[is_box] = n
    is_sphere = (prim > n_b) & (prim <= n_b + n_s)
    if is_sphere.any():
        j = prim[is_sphere] - 1 - n_b
        n = point[is_sphere] - scene.sphere_center[j]
        normal[is_sphere] = n / np.linalg.norm(n, axis=1, keepdims=True)
    is_cyl = prim > n_b + n_s
    if is_cyl.any():
        j = prim[is_cyl] - 1 - n_b - n_s
        p = point[is_cyl]
        top = np.abs(p[:, 1] - scene.cyl_y[j, 1]) < 1e-3
        n = np.stack([p[:, 0] - scene.cyl_center[j, 0], np.zeros(len(p), np.float32),
                      p[:, 2] - scene.cyl_center[j, 1]], axis=1)
        n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-9
        n[top] = (0.0, 1.0, 0.0)
        normal[is_cyl] = n
    return normal.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Shading
# --------------------------------------------------------------------------------------------


def _sky(scene: _Scene, direction: np.ndarray, seed: int) -> np.ndarray:
    style = scene.style
    up = np.clip(direction[:, 1], -1, 1)
    blend = np.clip(up, 0, 1)[:, None] ** 0.6
    colour = style["sky_horizon"] * (1 - blend) + style["sky_zenith"] * blend
    sun_glow = np.clip(direction @ scene.sun, 0, 1) ** 300
    colour = colour + sun_glow[:, None] * 0.8
    # clouds on a plane 1 km up
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(up > 0.01, 1.0 / np.maximum(up, 0.01), 0.0)
    cx, cz = direction[:, 0] * scale * 2.0, direction[:, 2] * scale * 2.0
    density = fbm(cx, cz, seed + 7, octaves=4)
    cover = np.clip((density - (1 - style["cloud_cover"])) * 3.0, 0, 1) * (up > 0.01)
    cloud = np.array([0.95, 0.95, 0.96], np.float32) * (0.8 + 0.2 * density[:, None])
    colour = colour * (1 - cover[:, None]) + cloud * cover[:, None]
    return np.clip(colour, 0, 1).astype(np.float32)


def _ground_labels(scene: _Scene, point: np.ndarray) -> np.ndarray:
    ax = np.abs(point[:, 0])
    return np.where(ax < scene.road_half, ROAD, TERRAIN)


def _albedo(scene: _Scene, point: np.ndarray, normal: np.ndarray, prim: np.ndarray,
            seed: int) -> np.ndarray:
    """Base colour of each hit point from its material and procedural texture."""
    style = scene.style
    amp = style["noise_amp"]
    x, y, z = point[:, 0], point[:, 1], point[:, 2]
    mat = scene.material[np.maximum(prim, 0)]
    albedo = scene.colour[np.maximum(prim, 0)].copy()
    grain = fbm(x * 3.0 + y * 2.0, z * 3.0 + y * 2.0, seed + 11)[:, None]
    albedo *= 1.0 + amp * (grain - 0.5) * 2.0

    sel = mat == M_GROUND
    if sel.any():
        gx, gz = x[sel], z[sel]
        on_road = np.abs(gx) < scene.road_half
        asphalt = style["asphalt"] * (1 + amp * (fbm(gx * 4, gz * 4, seed + 3) - 0.5) * 2)
        col = np.repeat(asphalt[:, None], 3, axis=1)
        dashed = (np.abs(gx) < 0.08) & (np.mod(gz, 6.0) < 3.0)
        edge = np.abs(np.abs(gx) - (scene.road_half - 0.3)) < 0.07
        col[on_road & (dashed | edge)] = (0.9, 0.88, 0.8)
        grass = style["grass"] * (0.8 + 0.4 * fbm(gx * 2, gz * 2, seed + 5)[:, None])
        albedo[sel] = np.where(on_road[:, None], col, grass)
    sel = mat == M_SIDEWALK
    if sel.any():
        tiles = (np.mod(x[sel], 1.5) < 0.04) | (np.mod(z[sel], 1.5) < 0.04)
        albedo[sel] *= np.where(tiles, 0.75, 1.0)[:, None]
        albedo[sel] *= np.where(normal[sel, 1] < 0.5, 0.85, 1.0)[:, None]  # curb face
    sel = mat == M_LAWN
    if sel.any():
        albedo[sel] *= 0.75 + 0.5 * fbm(x[sel] * 3, z[sel] * 3, seed + 13)[:, None]
    sel = mat == M_BUILDING
    if sel.any():
        par = scene.params[prim[sel]]
        n = normal[sel]
        u = np.where(np.abs(n[:, 0]) > 0.5, z[sel], x[sel])
        v = y[sel]
        fu = np.mod(u + par[:, 3], par[:, 0]) / par[:, 0]
        fv = np.mod(v, par[:, 1]) / par[:, 1]
        half = par[:, 2] / 2
        window = (np.abs(fu - 0.5) < half) & (np.abs(fv - 0.55) < half * 0.9) & (v > 1.0)
        window &= np.abs(n[:, 1]) < 0.5
        glass = np.array([0.18, 0.22, 0.28], np.float32) * (
            0.7 + 0.6 * value_noise(np.floor(u / par[:, 0]), np.floor(v / par[:, 1]), seed)[:, None])
        frame = window & ((np.abs(fu - 0.5) > half - 0.04) | (np.abs(fv - 0.55) > half * 0.9 - 0.04))
        col = albedo[sel]
        col = np.where(window[:, None], glass, col)
        col = np.where(frame[:, None], 0.9, col)
        col = np.where((np.abs(n[:, 1]) > 0.5)[:, None], col * 0.6, col)  # roofs
        albedo[sel] = col
    sel = mat == M_FENCE
    if sel.any():
        par = scene.params[prim[sel]]
        slat = np.mod(z[sel], par[:, 0]) / par[:, 0] < 0.2
        albedo[sel] *= np.where(slat, 0.55, 1.0)[:, None]
    sel = mat == M_CANOPY
    if sel.any():
        leaves = fbm(x[sel] * 2.5 + y[sel], z[sel] * 2.5 + y[sel] * 1.7, seed + 17, octaves=4)
        albedo[sel] *= (0.55 + 0.9 * leaves)[:, None]
    return np.clip(albedo, 0, 1).astype(np.float32)


def _shade(scene: _Scene, origin: np.ndarray, direction: np.ndarray, t: np.ndarray,
           prim: np.ndarray, normal: np.ndarray, seed: int, shadows: bool) -> np.ndarray:
    """Lit colour of hit points (sky for misses), with distance haze."""
    style = scene.style
    colour = np.empty((len(t), 3), np.float32)
    miss = ~np.isfinite(t)
    colour[miss] = _sky(scene, direction[miss], seed)
    hit = ~miss
    if hit.any():
        point = origin[hit] + t[hit, None] * direction[hit]
        n = normal[hit]
        albedo = _albedo(scene, point, n, prim[hit], seed)
        lambert = np.clip(n @ scene.sun, 0, 1)
        if shadows:
            s_t, _, _ = _trace(scene, point + n * 2e-3, np.broadcast_to(scene.sun, point.shape))
            lambert = lambert * (~np.isfinite(s_t))
        light = style["ambient"] * (0.75 + 0.25 * n[:, 1]) + style["sun_strength"] * lambert
        lit = albedo * light[:, None]
        haze = 1 - np.exp(-t[hit] / style["haze"])
        colour[hit] = lit * (1 - haze[:, None]) + style["sky_horizon"] * haze[:, None]
    return colour


def _water(scene: _Scene, origin: np.ndarray, direction: np.ndarray, t_geo: np.ndarray,
           geo_colour: np.ndarray, height: float, seed: int) -> np.ndarray:
    """Colour of water-plane hits: murky body, submerged geometry, Fresnel reflection, ripples."""
    style = scene.style
    t_w = (height - origin[:, 1]) / direction[:, 1]
    point = origin + t_w[:, None] * direction
    x, z = point[:, 0], point[:, 2]
    # ripples: gradient of a few travelling sines plus noise, damped with distance (anti-aliasing)
    rng = np.random.default_rng(seed + 23)
    gx = np.zeros_like(x)
    gz = np.zeros_like(z)
    for _ in range(4):
        angle, freq, amp = rng.uniform(0, 2 * np.pi), rng.uniform(1.5, 5.0), rng.uniform(0.01, 0.03)
        kx, kz = math.cos(angle) * freq, math.sin(angle) * freq
        phase = np.cos(kx * x + kz * z + rng.uniform(0, 2 * np.pi))
        gx += amp * kx * phase
        gz += amp * kz * phase
    eps = 0.05
    noise = fbm(x * 3, z * 3, seed + 29)
    gx += 0.15 * (fbm(x * 3 + eps, z * 3, seed + 29) - noise) / eps
    gz += 0.15 * (fbm(x * 3, z * 3 + eps, seed + 29) - noise) / eps
    damp = 1.0 / (1.0 + t_w / 15.0)
    n = np.stack([-gx * damp, np.ones_like(x), -gz * damp], axis=1)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    cos_i = np.clip(-(direction * n).sum(axis=1), 0.0, 1.0)
    reflect = direction + 2 * cos_i[:, None] * n
    reflect[:, 1] = np.abs(reflect[:, 1]) + 1e-3
    reflect /= np.linalg.norm(reflect, axis=1, keepdims=True)
    r_origin = point + np.array([0, 1e-3, 0], np.float32)
    r_t, r_p, r_n = _trace(scene, r_origin, reflect)
    reflected = _shade(scene, r_origin, reflect, r_t, r_p, r_n, seed, shadows=False)
    fresnel = 0.02 + 0.98 * (1 - cos_i) ** 5
    fresnel = np.clip(fresnel * 1.4 + 0.08, 0, 1)[:, None]  # murky, sediment-laden surface
    light = style["ambient"] + style["sun_strength"] * max(float(scene.sun[1]), 0.0)
    body = style["water"] * light * (0.85 + 0.3 * noise[:, None])
    under = np.clip(t_geo - t_w, 0, None)  # path length through the water
    visibility = np.exp(-6.0 * under)[:, None]
    body = body * (1 - visibility * 0.6) + geo_colour * style["water"] * 1.6 * visibility * 0.6
    foam = (under < 0.04)[:, None] * 0.15
    colour = fresnel * reflected + (1 - fresnel) * body + foam
    haze = (1 - np.exp(-t_w / style["haze"]))[:, None]
    return np.clip(colour * (1 - haze) + style["sky_horizon"] * haze, 0, 1)


def _post_process(image: np.ndarray, domain: str, rng: np.random.Generator) -> np.ndarray:
    """Camera look of the 'real' domain: blur, colour cast, vignetting, sensor noise."""
    if domain != "real":
        return image
    from scipy.ndimage import uniform_filter

    h, w, _ = image.shape
    image = uniform_filter(image, size=(3, 3, 1), mode="nearest")
    cast = np.array([1.04, 1.0, 0.93], np.float32) * rng.uniform(0.93, 1.07, 3).astype(np.float32)
    image = image * cast
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((yy - h / 2) / h) ** 2 + ((xx - w / 2) / w) ** 2
    image = image * (1 - 0.5 * r2)[..., None]
    image = image + rng.normal(0, 0.015, image.shape).astype(np.float32)
    image = np.clip(image, 0, 1) ** 0.95
    return image


def _to_uint8(image: np.ndarray) -> np.ndarray:
    # linear-ish shading values are treated as display values; a mild gamma brightens shadows
    return (np.clip(image, 0, 1) ** (1 / 1.1) * 255 + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _camera(rng: np.random.Generator, scene: _Scene, height: int, width: int):
    cam_x = float(rng.uniform(-scene.road_half + 0.8, scene.sidewalk_outer - 0.5))
    cam_h = float(rng.uniform(2.2, 2.8))
    yaw = float(rng.uniform(-0.5, 0.5))
    pitch = float(rng.uniform(-0.2, 0.05))
    roll = float(rng.uniform(-0.04, 0.04))
    hfov = float(rng.uniform(math.radians(60), math.radians(90)))
    focal = (width / 2) / math.tan(hfov / 2)
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    cam_dirs = np.stack([(u + 0.5 - width / 2) / focal, -(v + 0.5 - height / 2) / focal,
                         np.ones_like(u)], axis=-1).reshape(-1, 3)
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    r_roll = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]], np.float32)
    r_pitch = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]], np.float32)  # +pitch looks up
    r_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]], np.float32)
    rotation = r_yaw @ r_pitch @ r_roll
    dirs = cam_dirs @ rotation.T
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    forward = rotation @ np.array([0, 0, 1], np.float32)
    origin = np.array([cam_x, cam_h, 0.0], np.float32)
    info = {"x": cam_x, "height": cam_h, "yaw": yaw, "pitch": pitch, "roll": roll,
            "hfov_deg": math.degrees(hfov)}
    return origin, dirs.astype(np.float32), forward, info


def render_scene(
    seed: int,
    size: int | tuple[int, int] = 256,
    domain: str = "sim",
    water_heights: Sequence[float] = DEFAULT_WATER_HEIGHTS,
    shadows: bool = True,
) -> SimSample:
    """Render one viewpoint of the procedural street world.

    Args:
        seed: scene, camera and texture seed; the same ``(seed, domain, size)`` gives the same
            pixels.
        size: ``S`` for ``S x S`` or ``(height, width)``.
        domain: ``"sim"`` (clean, saturated) or ``"real"`` (muted textures, different lighting,
            camera post-processing) — the unlabelled stand-in for real photos.
        water_heights: water levels in metres above the road surface, one mask/render each.
        shadows: cast sun shadows (one extra ray per pixel).
    """
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; expected one of {DOMAINS}")
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    domain_offset = 0 if domain == "sim" else 7_919
    rng = np.random.default_rng([int(seed), domain_offset])
    scene = _build_scene(rng, domain)
    origin, dirs, forward, camera = _camera(rng, scene, height, width)
    tex_seed = int(rng.integers(0, 2**31 - 1))
    origins = np.broadcast_to(origin, dirs.shape)

    t, prim, normal = _trace(scene, origins, dirs)
    colour = _shade(scene, origins, dirs, t, prim, normal, tex_seed, shadows)

    hit = np.isfinite(t)
    point_y = np.where(hit, origin[1] + t * dirs[:, 1], np.inf)
    depth = np.where(hit, t * (dirs @ forward), FAR_DEPTH)
    depth = np.clip(depth, 0.05, FAR_DEPTH).astype(np.float32)
    labels = np.where(hit, scene.label[np.maximum(prim, 0)], SKY)
    ground = prim == 0
    if ground.any():
        labels[ground] = _ground_labels(scene, origin + t[ground, None] * dirs[ground])

    post_rng = np.random.default_rng([int(seed), domain_offset, 1])
    dry = _to_uint8(_post_process(colour.reshape(height, width, 3), domain, post_rng))

    heights = tuple(float(h) for h in water_heights)
    masks = np.zeros((len(heights), height * width), bool)
    flooded = np.zeros((len(heights), height, width, 3), np.uint8)
    for k, level in enumerate(heights):
        if level >= origin[1]:
            raise ValueError(f"water height {level} m is above the camera ({origin[1]:.2f} m)")
        # first surface below the water plane <=> the ray meets the plane before any geometry
        mask = point_y < level
        masks[k] = mask
        wet = colour.copy()
        if mask.any():
            wet[mask] = _water(scene, origins[mask], dirs[mask], t[mask], colour[mask], level,
                               tex_seed + 31 * k)
        post_rng = np.random.default_rng([int(seed), domain_offset, 1])
        flooded[k] = _to_uint8(_post_process(wet.reshape(height, width, 3), domain, post_rng))
    return SimSample(
        image=dry,
        depth=depth.reshape(height, width),
        segmentation=labels.reshape(height, width).astype(np.uint8),
        water_heights=heights,
        masks=masks.reshape(len(heights), height, width),
        flooded=flooded,
        seed=int(seed),
        domain=domain,
        camera=camera,
    )


def write_demo_photos(
    out_dir: str | Path,
    count: int,
    size: tuple[int, int] = (480, 640),
    seed: int = 0,
    domain: str = "real",
    label: bool = True,
    prefix: str = "demo",
) -> list[Path]:
    """Write ``count`` dry street photos as PNG (``{prefix}_{i:04d}.png``) and return their paths.

    With ``label=True`` a small "DEMO" badge is drawn in the top-left corner so the pictures can
    never be mistaken for real photos of a participant's area.
    """
    from PIL import Image, ImageDraw, ImageFont

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        sample = render_scene(seed + i, size=size, domain=domain, water_heights=())
        image = Image.fromarray(sample.image)
        if label:
            draw = ImageDraw.Draw(image)
            font_size = max(10, size[0] // 24)
            try:
                font = ImageFont.load_default(size=font_size)
            except TypeError:  # Pillow without scalable default font
                font = ImageFont.load_default()
            left, top, right, bottom = draw.textbbox((0, 0), "DEMO", font=font)
            pad = max(2, font_size // 4)
            draw.rectangle((4, 4, 4 + right - left + 2 * pad, 4 + bottom - top + 2 * pad),
                           fill=(200, 20, 20))
            draw.text((4 + pad - left, 4 + pad - top), "DEMO", fill=(255, 255, 255), font=font)
        path = out / f"{prefix}_{i:04d}.png"
        image.save(path)
        paths.append(path)
    return paths
