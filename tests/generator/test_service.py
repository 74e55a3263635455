"""The worker-side generation service: files in, files out, idempotent, batched."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generator.pipeline import FloodPipeline
from generator.reference import LEARNED_BACKEND, reference_pipeline
from generator.service import (
    FloodFailure,
    FloodParams,
    FloodRecord,
    SourceImageError,
    flood_file,
    flood_many,
    get_pipeline,
)
from generator.simworld import render_scene


class CountingPipeline:
    """Wraps a pipeline and counts the model runs (and their batch sizes)."""

    def __init__(self, pipeline: FloodPipeline) -> None:
        self.pipeline = pipeline
        self.batches: list[int] = []

    def __call__(self) -> FloodPipeline:
        return self

    def __getattr__(self, name: str):
        return getattr(self.pipeline, name)

    def flood_batch(self, images, **kwargs):
        self.batches.append(len(images))
        return self.pipeline.flood_batch(images, **kwargs)


@pytest.fixture(scope="module")
def reference() -> FloodPipeline:
    return reference_pipeline()


@pytest.fixture
def counting(reference: FloodPipeline) -> CountingPipeline:
    return CountingPipeline(reference)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("sources")
    paths = []
    for seed, (height, width) in zip((5, 6, 7), ((333, 517), (160, 160), (150, 240)), strict=True):
        path = folder / f"street {seed}.png"
        Image.fromarray(render_scene(seed, size=(height, width), domain="real", water_heights=()).image).save(path)
        paths.append(path)
    return paths


def test_flood_file_writes_result_mask_and_record(tmp_path: Path, sources: list[Path],
                                                  counting: CountingPipeline) -> None:
    record = flood_file(sources[0], tmp_path / "out", FloodParams(seed=3), counting)
    assert isinstance(record, FloodRecord) and not record.cached
    assert record.backend == LEARNED_BACKEND and record.model_version == counting.model_version
    assert record.params == {"event": "flood", "threshold": 0.5, "size": 128, "frame": "pad",
                             "seed": 3, "precision": "fp32", "format": "png"}
    assert {"read", "masker", "painter", "write", "total"} <= set(record.timings_ms)
    assert record.timings == record.timings_ms
    source = np.asarray(Image.open(sources[0]).convert("RGB"))
    result = np.asarray(Image.open(record.output))
    mask = np.asarray(Image.open(record.mask))
    assert result.shape == source.shape and mask.shape == source.shape[:2]
    water = mask == 255
    assert 0 < water.mean() < 1 and np.array_equal(result[~water], source[~water])
    stored = json.loads(Path(record.record).read_text())
    assert stored["cache_key"] == record.cache_key and stored["backend"] == LEARNED_BACKEND
    assert not list((tmp_path / "out").glob(".*tmp")), "no temporary file may remain"
    assert Path(record.output).name.startswith("street_5-flood-")


def test_same_source_model_and_params_is_a_cache_hit_without_recomputing(
    tmp_path: Path, sources: list[Path], counting: CountingPipeline
) -> None:
    first = flood_file(sources[1], tmp_path, {"seed": 0}, counting)
    stamps = {p: Path(p).stat().st_mtime_ns for p in (first.output, first.mask, first.record)}
    again = flood_file(sources[1], tmp_path, {"seed": 0}, counting)
    assert counting.batches == [1]
    assert again.cached and again.cache_key == first.cache_key and again.output == first.output
    assert again.params == first.params and again.model_version == first.model_version
    assert {p: Path(p).stat().st_mtime_ns for p in stamps} == stamps
    # The same bytes under another name are the same source: still no recomputation.
    copy = tmp_path / "copy" / sources[1].name
    copy.parent.mkdir()
    copy.write_bytes(sources[1].read_bytes())
    assert flood_file(copy, tmp_path, {"seed": 0}, counting).cached
    # Other parameters are another result.
    other = flood_file(sources[1], tmp_path, {"seed": 0, "threshold": 0.7}, counting)
    assert not other.cached and other.cache_key != first.cache_key and counting.batches == [1, 1]
    # A missing mask invalidates the stored result.
    Path(first.mask).unlink()
    assert not flood_file(sources[1], tmp_path, {"seed": 0}, counting).cached
    assert len(counting.batches) == 3


def test_flood_many_batches_waiting_requests_and_isolates_bad_sources(
    tmp_path: Path, sources: list[Path], counting: CountingPipeline
) -> None:
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("this is not a picture")
    inputs = [sources[0], tmp_path / "missing.jpg", sources[1], not_an_image, sources[2]]
    results = flood_many(inputs, tmp_path / "out", FloodParams(event="flood"), counting, max_batch=8)
    assert [type(r).__name__ for r in results] == ["FloodRecord", "FloodFailure", "FloodRecord",
                                                   "FloodFailure", "FloodRecord"]
    assert counting.batches == [3]
    assert all(r.batch_size == 3 for r in results if isinstance(r, FloodRecord))
    assert "no such file" in results[1].error and "not a readable image" in results[3].error
    # Two batches when the limit is smaller; cached ones are not run again.
    more = flood_many(sources, tmp_path / "out", [{"seed": 1}, {"seed": 2}, {"seed": 0}], counting,
                      max_batch=1)
    assert [r.cached for r in more] == [False, False, True] and counting.batches == [3, 1, 1]


def test_jpeg_output_smog_and_wildfire(tmp_path: Path, sources: list[Path],
                                       counting: CountingPipeline) -> None:
    jpeg = flood_file(sources[2], tmp_path, {"format": "jpeg"}, counting)
    assert jpeg.output.endswith(".jpg") and Image.open(jpeg.output).format == "JPEG"
    source = np.asarray(Image.open(sources[2]).convert("RGB")).astype(int)
    for event in ("smog", "wildfire"):
        record = flood_file(sources[2], tmp_path, {"event": event, "seed": 4}, counting)
        result = np.asarray(Image.open(record.output).convert("RGB")).astype(int)
        assert record.event == event and result.shape == source.shape
        assert np.abs(result - source).mean() > 10


def test_bad_parameters_and_sources_raise(tmp_path: Path, sources: list[Path],
                                          counting: CountingPipeline) -> None:
    with pytest.raises(ValueError, match="unknown generation parameters"):
        flood_file(sources[0], tmp_path, {"colour": "red"}, counting)
    with pytest.raises(ValueError, match="event"):
        FloodParams(event="tsunami")
    with pytest.raises(SourceImageError):
        flood_file(tmp_path / "absent.png", tmp_path, None, counting)
    assert counting.batches == []


def test_get_pipeline_loads_once_per_process_and_needs_both_checkpoints(tmp_path: Path,
                                                                        sources: list[Path]) -> None:
    get_pipeline.cache_clear()
    try:
        assert get_pipeline("", "", "cpu") is get_pipeline("", "", "cpu")
        assert get_pipeline().backend == LEARNED_BACKEND
        with pytest.raises(ValueError, match="both"):
            get_pipeline("generator/weights/masker_tiny_sim.pt", "", "cpu")
        # The keyword interface the Celery task uses: empty paths mean the reference backend.
        record = flood_file(sources[1], tmp_path, {"seed": 0}, masker_path="", painter_path="",
                            device="cpu")
        assert record.backend == LEARNED_BACKEND
        broken = tmp_path / "broken.pt"
        broken.write_bytes(b"not a checkpoint")
        failures = flood_many(sources[:2], tmp_path, None, masker_path=str(broken),
                              painter_path=str(broken))
        assert all(isinstance(f, FloodFailure) and "cannot load the models" in f.error for f in failures)
        with pytest.raises(RuntimeError, match="cannot load the models"):
            flood_file(sources[0], tmp_path, None, masker_path=str(broken), painter_path=str(broken))
    finally:
        get_pipeline.cache_clear()
