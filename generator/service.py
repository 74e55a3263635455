"""Worker-side generation service: files in, files out, no Django.

The GPU worker (``studyserver.treatments.tasks``) and the ``flood`` command line call this
module with plain paths:

- :func:`get_pipeline` loads a masker and a painter once per process (an ``lru_cache`` keyed
  by the checkpoint paths and the device; empty paths mean the reference backend, see
  :mod:`generator.reference`);
- :func:`flood_file` floods one source image into ``out_dir`` and returns a :class:`FloodRecord`;
- :func:`flood_many` does the same for several sources, running those that share parameters
  through the models together (up to ``max_batch`` images per forward pass).

Idempotence: the cache key is SHA-256 over the source file's bytes, the backend, the model
version and the effective parameters (event, threshold, working size, seed, output format,
framing, precision). The result, its mask and a JSON sidecar with the record are written under
names derived from the key, each atomically (temporary file in the same folder, then
``os.replace``), the sidecar last; when all three exist the stored record is returned without
running any model. A crash mid-write leaves at most a stray temporary file, never a partial
result under a final name.

Files: ``<stem>-<event>-<key16>.png`` (or ``.jpg``), ``<stem>-<event>-<key16>-mask.png`` (flood:
0/255 water mask; smog/wildfire: the effect's strength 0..255), ``<stem>-<event>-<key16>.json``.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from generator.files import write_bytes
from generator.params import FloodParams, content_key
from generator.pipeline import FloodOutput, FloodPipeline, PipelineOptions

JPEG_QUALITY = 92
RECORD_VERSION = 1
PIPELINE_ERROR = "PipelineError"


class SourceImageError(ValueError):
    """The source is missing or is not a readable image."""




@dataclass
class FloodRecord:
    """One produced (or found) result: paths, provenance, and the time this call took."""

    input: str
    output: str
    mask: str
    record: str
    event: str
    backend: str
    model_version: str
    versions: dict[str, str]
    params: dict[str, Any]
    cache_key: str
    timings_ms: dict[str, float]
    cached: bool = False
    batch_size: int = 1

    @property
    def timings(self) -> dict[str, float]:
        return self.timings_ms

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class FloodFailure:
    """A source that could not be processed; ``error`` says why."""

    input: str
    error: str
    kind: str = "error"
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input, "error": self.error, "error_type": self.kind}


# --------------------------------------------------------------------------------------------
# Pipelines, loaded once per process
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def get_pipeline(masker_path: str = "", painter_path: str = "", device: str = "cpu",
                 compile: bool = False) -> FloodPipeline:
    """The pipeline for these checkpoints on ``device``, built on first use in this process.

    Both paths empty: the reference backend. A worker process therefore loads its models once
    and keeps them for every later task (``get_pipeline.cache_clear()`` drops them). Replacing a
    checkpoint file in place needs a worker restart to take effect; until then results keep
    recording the version actually loaded, so provenance stays true.
    """
    options = PipelineOptions(device=device or "cpu", compile=compile)
    masker_path, painter_path = str(masker_path or ""), str(painter_path or "")
    if not masker_path and not painter_path:
        from generator.reference import reference_pipeline

        return reference_pipeline(options)
    if not masker_path or not painter_path:
        raise ValueError("give both a masker and a painter checkpoint, or neither (reference backend)")
    return FloodPipeline.from_checkpoints(masker_path, painter_path, options)


PipelineProvider = Callable[[], FloodPipeline]


def _resolve_provider(provider: PipelineProvider | FloodPipeline | None, masker_path: str,
                      painter_path: str, device: str) -> PipelineProvider:
    if isinstance(provider, FloodPipeline):
        return lambda: provider
    if provider is not None:
        return provider
    return functools.partial(get_pipeline, str(masker_path or ""), str(painter_path or ""),
                             device or "cpu")


# --------------------------------------------------------------------------------------------
# Keys, names, atomic files
# --------------------------------------------------------------------------------------------


def effective_params(params: FloodParams, pipeline: FloodPipeline) -> dict[str, Any]:
    """The parameters that determine the output bytes, with defaults resolved."""
    return {"event": params.event, "threshold": float(params.threshold),
            "size": int(params.size or pipeline.size), "frame": pipeline.frame,
            "seed": int(params.seed), "precision": pipeline.precision, "format": params.format}


def cache_key(source_bytes: bytes, backend: str, model_version: str, params: Mapping[str, Any]) -> str:
    """The content key (:func:`generator.params.content_key`) of a record of this format."""
    return content_key(source_bytes, backend, model_version, params, record_version=RECORD_VERSION)


def _safe_stem(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem).strip("._") or "image"
    return stem[:60]


def output_paths(out_dir: Path, source: Path, event: str, key: str, fmt: str) -> tuple[Path, Path, Path]:
    base = f"{_safe_stem(source)}-{event}-{key[:16]}"
    ext = "jpg" if fmt == "jpeg" else "png"
    return out_dir / f"{base}.{ext}", out_dir / f"{base}-mask.png", out_dir / f"{base}.json"


def _encode(image: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "jpeg":
        Image.fromarray(image).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    else:
        Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def read_source(path: str | Path) -> tuple[bytes, np.ndarray]:
    """The file's bytes and its pixels (RGB uint8, EXIF orientation applied)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as error:
        raise SourceImageError(f"no such file: {path}") from error
    except OSError as error:
        raise SourceImageError(f"cannot read {path}: {error}") from error
    try:
        with Image.open(io.BytesIO(data)) as image:
            pixels = np.asarray(ImageOps.exif_transpose(image).convert("RGB")).copy()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise SourceImageError(f"{path} is not a readable image: {error}") from error
    return data, pixels


def _load_cached(paths: tuple[Path, Path, Path], key: str) -> dict[str, Any] | None:
    output, mask, record = paths
    if not (output.is_file() and mask.is_file() and record.is_file()):
        return None
    try:
        stored = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    return stored if stored.get("cache_key") == key else None


# --------------------------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------------------------


@dataclass
class _Pending:
    index: int
    source: Path
    pixels: np.ndarray
    key: str
    params: FloodParams
    effective: dict[str, Any]
    paths: tuple[Path, Path, Path]
    read_ms: float


def flood_many(
    sources: Sequence[str | Path],
    out_dir: str | Path,
    params: FloodParams | Mapping[str, Any] | Sequence[FloodParams | Mapping[str, Any]] | None = None,
    pipeline_provider: PipelineProvider | FloodPipeline | None = None,
    *,
    masker_path: str = "",
    painter_path: str = "",
    device: str = "cpu",
    max_batch: int = 8,
) -> list[FloodRecord | FloodFailure]:
    """Flood several sources; returns one record or failure per source, in order.

    ``params``: one for all or one per source. Results already stored for the same key are
    returned as they are (``cached=True``). The others are grouped by parameters (except the
    seed) and run ``max_batch`` at a time. A source that cannot be read fails alone; a model
    error fails its batch. Without ``pipeline_provider`` the per-process :func:`get_pipeline`
    cache is used with ``masker_path``, ``painter_path`` and ``device``.
    """
    out_dir = Path(out_dir)
    provider = _resolve_provider(pipeline_provider, masker_path, painter_path, device)
    if params is None or isinstance(params, FloodParams | Mapping):
        per_source = [params] * len(sources)
    else:
        per_source = list(params)
        if len(per_source) != len(sources):
            raise ValueError(f"{len(per_source)} parameter sets for {len(sources)} sources")
    results: list[FloodRecord | FloodFailure | None] = [None] * len(sources)
    pending: list[_Pending] = []
    pipeline: FloodPipeline | None = None
    load_error: FloodFailure | None = None
    for index, (source, raw_params) in enumerate(zip(sources, per_source, strict=True)):
        start = time.perf_counter()
        source = Path(source)
        try:
            flood_params = FloodParams.from_value(raw_params)
            data, pixels = read_source(source)
        except ValueError as error:  # SourceImageError is one
            results[index] = FloodFailure(str(source), str(error), type(error).__name__)
            continue
        read_ms = (time.perf_counter() - start) * 1000
        if pipeline is None and load_error is None:
            try:  # loaded on the first readable source; a broken checkpoint fails every source
                pipeline = provider()
            except (OSError, ValueError, RuntimeError, KeyError) as error:
                load_error = FloodFailure("", f"cannot load the models: {error}", PIPELINE_ERROR)
        if pipeline is None:
            assert load_error is not None
            results[index] = dataclasses.replace(load_error, input=str(source))
            continue
        try:
            effective = effective_params(flood_params, pipeline)
            key = cache_key(data, pipeline.backend, pipeline.model_version, effective)
            paths = output_paths(out_dir, source, flood_params.event, key, flood_params.format)
            stored = _load_cached(paths, key)
        except ValueError as error:
            results[index] = FloodFailure(str(source), str(error), type(error).__name__)
            continue
        if stored is not None:
            results[index] = _record_from_stored(stored, source, paths, read_ms)
        else:
            pending.append(_Pending(index, source, pixels, key, flood_params, effective, paths, read_ms))

    groups: dict[tuple, list[_Pending]] = {}
    for item in pending:
        p = item.params
        groups.setdefault((p.event, p.threshold, p.size, p.format), []).append(item)
    for members in groups.values():
        for start in range(0, len(members), max(1, max_batch)):
            batch = members[start:start + max(1, max_batch)]
            assert pipeline is not None
            try:
                outputs = pipeline.flood_batch(
                    [item.pixels for item in batch], event=batch[0].params.event,
                    threshold=batch[0].params.threshold, seed=[item.params.seed for item in batch],
                    size=batch[0].params.size)
            except (RuntimeError, ValueError) as error:
                for item in batch:
                    results[item.index] = FloodFailure(str(item.source), f"generation failed: {error}",
                                                       type(error).__name__)
                continue
            for item, output in zip(batch, outputs, strict=True):
                results[item.index] = _store(item, output)
    return [r for r in results if r is not None]


def _store(item: _Pending, output: FloodOutput) -> FloodRecord:
    start = time.perf_counter()
    image_path, mask_path, record_path = item.paths
    write_bytes(mask_path, _encode(output.mask, "png"))
    write_bytes(image_path, _encode(output.image, item.params.format))
    timings = {"read": round(item.read_ms, 3), **output.timings_ms}
    record = FloodRecord(
        input=str(item.source), output=str(image_path), mask=str(mask_path), record=str(record_path),
        event=output.event, backend=output.backend, model_version=output.model_version,
        versions=dict(output.versions), params=dict(item.effective), cache_key=item.key,
        timings_ms=timings, cached=False, batch_size=output.batch_size,
    )
    timings["write"] = round((time.perf_counter() - start) * 1000, 3)
    stored = record.to_json()
    stored["output"], stored["mask"], stored["record"] = image_path.name, mask_path.name, record_path.name
    write_bytes(record_path, (json.dumps(stored, indent=1, sort_keys=True) + "\n").encode())
    return record


def _record_from_stored(stored: dict[str, Any], source: Path, paths: tuple[Path, Path, Path],
                        read_ms: float) -> FloodRecord:
    image_path, mask_path, record_path = paths
    return FloodRecord(
        input=str(source), output=str(image_path), mask=str(mask_path), record=str(record_path),
        event=stored["event"], backend=stored["backend"], model_version=stored["model_version"],
        versions=dict(stored.get("versions") or {}), params=dict(stored["params"]),
        cache_key=stored["cache_key"], timings_ms={"read": round(read_ms, 3), "total": round(read_ms, 3)},
        cached=True, batch_size=1,
    )


def flood_file(
    source_path: str | Path,
    out_dir: str | Path,
    params: FloodParams | Mapping[str, Any] | None = None,
    pipeline_provider: PipelineProvider | FloodPipeline | None = None,
    *,
    masker_path: str = "",
    painter_path: str = "",
    device: str = "cpu",
) -> FloodRecord:
    """Flood one file into ``out_dir`` (idempotent; see the module doc). Raises
    :class:`SourceImageError` for an unreadable source, ``ValueError`` for bad parameters and
    ``RuntimeError`` when the models fail."""
    result = flood_many([source_path], out_dir, params, pipeline_provider, masker_path=masker_path,
                        painter_path=painter_path, device=device, max_batch=1)[0]
    if isinstance(result, FloodFailure):
        if result.kind == "SourceImageError":
            raise SourceImageError(result.error)
        if result.kind == "ValueError":
            raise ValueError(result.error)
        raise RuntimeError(result.error)
    return result
