"""A tiny training run through the command-line entry point, with resume and evaluation."""

import csv
import importlib.util
import json

import pytest

from generator.__main__ import main
from generator.presets import TrainSettings, read_config_file, resolve

TINY_RUN = {
    "preset": "tiny",
    "train": {"batch_size": 2, "sim_scenes": 6, "val_scenes": 2, "checkpoint_every": 2,
              "val_every": 2, "log_every": 1, "adaptation_start": 0, "shadows": False},
}


def _rows(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_config_files_json_and_toml(tmp_path):
    (tmp_path / "c.toml").write_text('preset = "tiny"\n[train]\nbatch_size = 3\n')
    model, weights, settings = resolve("masker", read_config_file(tmp_path / "c.toml"))
    assert settings.batch_size == 3 and settings.lr == resolve("masker", {"preset": "tiny"})[2].lr
    assert model.encoder.backbone.width_multiplier < 1 and weights.me == 0.5
    with pytest.raises(ValueError):
        resolve("masker", {"train": {"no_such_setting": 1}})
    assert isinstance(resolve("painter", {})[2], TrainSettings)


@pytest.mark.parametrize("kind", ["masker", "painter"])
def test_tiny_run_checkpoints_resumes_and_evaluates(tmp_path, capsys, kind):
    config = tmp_path / "run.json"
    config.write_text(json.dumps(TINY_RUN))
    out = tmp_path / "run"
    args = ["train", kind, "--config", str(config), "--data", "sim", "--size", "32",
            "--out", str(out), "--no-progress", "--json"]
    assert main([*args, "--steps", "4"]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["start_step"] == 0
    assert sorted(p.name for p in (out / "checkpoints").glob(f"{kind}_*.pt")) == [
        f"{kind}_000002.pt", f"{kind}_000004.pt"]
    assert (out / "val" / "step_000004.png").exists()
    assert main([*args, "--steps", "6"]) == 0  # resumes from step 4
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert second["start_step"] == 4
    steps = [int(r["step"]) for r in _rows(out / "metrics.csv")]
    assert steps[0] == 0 and steps[-1] == 6 and steps.count(5) == 1  # no step trained twice
    evaluate = ["evaluate", kind, "--checkpoint", second["checkpoint"], "--data", "sim",
                "--size", "32", "--count", "2", "--json"]
    if kind == "painter":
        evaluate += ["--grid", str(tmp_path / "grid.png")]
    assert main(evaluate) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["images"] == 2 and report["model_version"]
    if kind == "masker":
        for key in ("iou", "error", "f05", "edge_coherence"):
            assert 0.0 <= report[key] <= 1.0
    else:
        assert report["masked_l1"] > 0 and (tmp_path / "grid.png").exists()


def test_unknown_command_and_missing_flood_module(capsys):
    assert main(["nonsense"]) == 2
    if importlib.util.find_spec("generator.flood_cli") is None:
        assert main(["flood", "--input", "x.png", "--out", "o"]) == 2
        assert "flood_cli" in capsys.readouterr().err
