"""The ``python -m generator flood`` contract, through a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generator.flood_cli import CheckpointArgumentError, resolve_checkpoints
from generator.reference import LEARNED_BACKEND
from generator.simworld import render_scene

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO / "generator" / "weights"
REQUIRED_FIELDS = {"input", "output", "mask", "backend", "model_version", "event", "timings_ms"}


def run_flood(*args: str) -> tuple[int, list[dict], str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "generator", "flood", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return done.returncode, lines, done.stderr


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli")
    good = folder / "street.png"
    Image.fromarray(render_scene(12, size=(333, 517), domain="real", water_heights=()).image).save(good)
    second = folder / "second.jpg"
    Image.fromarray(render_scene(13, size=(144, 200), domain="real", water_heights=()).image).save(second)
    not_image = folder / "notes.png"
    not_image.write_text("not an image")
    broken = folder / "broken.pt"
    broken.write_bytes(b"\x00garbage")
    return {"good": good, "second": second, "not_image": not_image, "broken": broken,
            "missing": folder / "missing.png"}


def test_json_lines_per_input_errors_do_not_stop_the_others(tmp_path: Path, photos: dict[str, Path]) -> None:
    inputs = [photos["good"], photos["missing"], photos["not_image"], photos["second"]]
    code, lines, stderr = run_flood("--input", *map(str, inputs), "--out", str(tmp_path), "--json")
    assert code == 1, stderr
    assert [line["input"] for line in lines] == [str(p) for p in inputs]
    good, missing, not_image, second = lines
    assert "error" in missing and "error" in not_image
    for line, source in ((good, photos["good"]), (second, photos["second"])):
        assert set(line) >= REQUIRED_FIELDS and "error" not in line
        assert line["backend"] == LEARNED_BACKEND and line["event"] == "flood"
        assert {"masker", "painter", "total"} <= set(line["timings_ms"])
        pixels = np.asarray(Image.open(source).convert("RGB"))
        result = np.asarray(Image.open(line["output"]))
        mask = np.asarray(Image.open(line["mask"]))
        assert result.shape == pixels.shape and mask.shape == pixels.shape[:2]
        assert np.array_equal(result[mask == 0], pixels[mask == 0])

    code, again, _ = run_flood("--input", str(photos["good"]), "--out", str(tmp_path), "--json")
    assert code == 0 and again[0]["cached"] and again[0]["output"] == good["output"]


def test_two_bare_checkpoints_in_any_order_and_other_events(tmp_path: Path, photos: dict[str, Path]) -> None:
    code, lines, stderr = run_flood(
        "--input", str(photos["second"]), "--out", str(tmp_path), "--json", "--event", "wildfire",
        "--checkpoint", str(WEIGHTS / "painter_tiny_sim.pt"),
        "--checkpoint", str(WEIGHTS / "masker_tiny_sim.pt"), "--size", "128", "--seed", "3")
    assert code == 0, stderr
    (line,) = lines
    assert line["backend"] == "checkpoint" and line["event"] == "wildfire"
    assert line["params"]["seed"] == 3 and line["params"]["size"] == 128
    assert line["model_version"] == "-".join([line["versions"]["masker"], line["versions"]["painter"]])


def test_unreadable_checkpoint_gives_an_error_line_per_input(tmp_path: Path, photos: dict[str, Path]) -> None:
    code, lines, _ = run_flood(
        "--input", str(photos["good"]), str(photos["second"]), "--out", str(tmp_path), "--json",
        "--checkpoint", f"masker={photos['broken']}",
        "--checkpoint", f"painter={WEIGHTS / 'painter_tiny_sim.pt'}")
    assert code == 1
    assert len(lines) == 2 and all("error" in line and "checkpoint" in line["error"] for line in lines)
    assert not list(tmp_path.glob("*.png"))


def test_resolve_checkpoints_by_prefix_or_file_kind() -> None:
    masker, painter = str(WEIGHTS / "masker_tiny_sim.pt"), str(WEIGHTS / "painter_tiny_sim.pt")
    assert resolve_checkpoints([]) == ("", "")
    assert resolve_checkpoints([f"painter={painter}", f"masker={masker}"]) == (masker, painter)
    assert resolve_checkpoints([painter, masker]) == (masker, painter)
    with pytest.raises(CheckpointArgumentError, match="no painter"):
        resolve_checkpoints([masker])
    with pytest.raises(CheckpointArgumentError, match="two masker"):
        resolve_checkpoints([masker, f"masker={masker}"])
    with pytest.raises(CheckpointArgumentError, match="unreadable"):
        resolve_checkpoints(["/nonexistent/model.pt", painter])
