"""Importing the published ClimateGAN weights: architecture, conversion, refusals, inference.

The release-shaped checkpoint (every published key and shape, random values) is written and
imported once per session by the ``climategan_checkpoints`` fixture (root ``conftest.py``).
"""

from __future__ import annotations

import copy
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from generator import climategan
from generator.__main__ import main as generator_main
from generator.checkpoint import build_model, build_model_from_checkpoint, load_checkpoint
from generator.config import ClimateGANMaskerConfig, ClimateGANPainterConfig
from generator.models import ClimateGANMasker, ClimateGANPainter
from generator.models.common import StateDictMismatchError
from generator.pipeline import FloodPipeline, PipelineOptions
from generator.service import flood_file
from tests.support.climategan import (
    RELEASE_OPTS,
    release_keys,
    release_state,
    write_part,
)


def mapped_release_keys(kind: str) -> dict[str, tuple[int, ...]]:
    """The release's keys as this project names them: spectral norm folded, prefixes dropped."""
    out = {}
    for key, shape in release_keys()[kind].items():
        if key.endswith(("weight_u", "weight_v")):
            continue
        key = key.replace(".module.", ".").replace("weight_bar", "weight")
        out[key.removeprefix("painter.")] = shape
    return out


def opts_with(**changes: object) -> dict:
    """RELEASE_OPTS with dotted-path changes, e.g. ``opts_with(**{"gen.p.no_z": False})``."""
    opts = copy.deepcopy(RELEASE_OPTS)
    for dotted, value in changes.items():
        node = opts
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return opts


# ----------------------------------------------------------------------------- architecture


@pytest.mark.parametrize("kind", ["masker", "painter"])
def test_architecture_has_exactly_the_release_names_and_shapes(kind: str) -> None:
    opts = RELEASE_OPTS
    config = (climategan.masker_config_from_opts(opts) if kind == "masker"
              else climategan.painter_config_from_opts(opts))
    with torch.device("meta"):
        model = build_model(kind, config)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == mapped_release_keys(kind)
    parameters = sum(p.numel() for p in model.parameters()) / 1e6
    assert parameters == pytest.approx({"masker": 65.61, "painter": 42.28}[kind], abs=0.01)


def test_release_options_give_the_published_configuration() -> None:
    masker = climategan.masker_config_from_opts(RELEASE_OPTS)
    assert masker == ClimateGANMaskerConfig()  # the defaults are the release's
    assert (masker.mask_use_spade, masker.spade_cond_channels, masker.depth_target_size) == (True, 15, 160)
    assert climategan.painter_config_from_opts(RELEASE_OPTS) == ClimateGANPainterConfig()


@pytest.mark.slow
def test_mask_decoder_without_spade_follows_the_base_decoder() -> None:
    config = climategan.masker_config_from_opts(opts_with(**{"gen.m.use_spade": False}))
    with torch.device("meta"):
        model = build_model("masker", config)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith("decoders.m.")}
    # spectral norm, no BatchNorm: every conv keeps its bias; 1x1 projection, 3 residual blocks,
    # 3 upsampling convs halving 64 channels, a last conv to one channel
    assert shapes["decoders.m.proj_conv.conv.weight"] == (64, 2048, 1, 1)
    assert shapes["decoders.m.low_level_conv.conv.weight"] == (64, 256, 3, 3)
    assert shapes["decoders.m.merge_feats_conv.conv.weight"] == (64, 128, 1, 1)
    assert shapes["decoders.m.model.0.model.2.model.1.conv.bias"] == (64,)
    assert shapes["decoders.m.model.6.conv.weight"] == (8, 16, 3, 3)
    assert shapes["decoders.m.model.7.conv.weight"] == (1, 8, 3, 3)
    assert not any("norm" in k for k in shapes)
    # Random values without the cost of initialising 65 M parameters the usual way.
    masker = model.to_empty(device="cpu").eval()
    generator = torch.Generator().manual_seed(0)
    for key, tensor in masker.state_dict().items():
        if key.endswith("running_var"):
            tensor.fill_(1.0)
        elif tensor.is_floating_point():
            tensor.normal_(0.0, 0.02, generator=generator)
        else:
            tensor.zero_()
    with torch.no_grad():
        out = masker(torch.zeros(1, 3, 64, 64))
    assert out.mask_logits.shape == (1, 1, 64, 64)


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(("option", "value", "kind"), [
    ("gen.encoder.architecture", "deeplabv2", "masker"),
    ("gen.deeplabv3.backbone", "mobilenet", "masker"),
    ("gen.deeplabv3.output_stride", 16, "masker"),
    ("gen.d.architecture", "base", "masker"),
    ("gen.d.classify.enable", True, "masker"),
    ("gen.s.architecture", "deeplabv2", "masker"),
    ("gen.m.spade.cond_nc", 13, "masker"),
    ("gen.m.spade.spade_param_free_norm", "syncbatch", "masker"),
    ("data.normalization", "HRNet", "masker"),
    ("gen.p.no_z", False, "painter"),
    ("gen.p.use_final_shortcut", True, "painter"),
    ("gen.p.spade_param_free_norm", "layer", "painter"),
])
def test_unsupported_options_are_refused_by_name(option: str, value: object, kind: str) -> None:
    parse = climategan.masker_config_from_opts if kind == "masker" else climategan.painter_config_from_opts
    with pytest.raises(climategan.UnsupportedOptionError, match=option.replace(".", r"\.")):
        parse(opts_with(**{option: value}))


def test_tasks_must_include_the_model() -> None:
    with pytest.raises(climategan.UnsupportedOptionError, match="tasks"):
        climategan.masker_config_from_opts(opts_with(tasks=["p"]))
    with pytest.raises(climategan.UnsupportedOptionError, match="tasks"):
        climategan.painter_config_from_opts(opts_with(tasks=["d", "s", "m"]))


@pytest.fixture(scope="module")
def painter_state() -> dict[str, torch.Tensor]:
    return release_state("painter", seed=5)


def test_wrong_missing_and_unknown_tensors_are_named(tmp_path: Path, painter_state) -> None:
    state = dict(painter_state)
    state["painter.conv_img.bias"] = torch.zeros(4)  # wrong shape
    del state["painter.fc.weight"]  # missing
    state["painter.extra_block.weight"] = torch.zeros(1)  # unknown
    part = climategan.ReleasePart(tmp_path / "latest_ckpt.pth", tmp_path / "opts.yaml")
    with pytest.raises(StateDictMismatchError) as error:
        climategan.convert_part("painter", part, state, RELEASE_OPTS)
    message = str(error.value)
    assert "conv_img.bias: file (4,) vs model (3,)" in message
    assert "missing keys (1): fc.weight" in message
    assert "unexpected keys (1): extra_block.weight" in message


def test_bad_spectral_norm_vectors_are_named(tmp_path: Path, painter_state) -> None:
    state = dict(painter_state)
    state["painter.head_0.conv_0.module.weight_u"] = torch.ones(7)
    del state["painter.head_0.conv_1.module.weight_v"]
    part = climategan.ReleasePart(tmp_path / "latest_ckpt.pth", tmp_path / "opts.yaml")
    with pytest.raises(climategan.ReleaseError) as error:
        climategan.convert_part("painter", part, state, RELEASE_OPTS)
    assert "painter.head_0.conv_0.module: weight_u (7,)" in str(error.value)
    assert "painter.head_0.conv_1.module: has weight_bar/u, needs bar, u and v" in str(error.value)


def test_missing_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(climategan.ReleaseError, match="no such file or folder"):
        climategan.locate(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(climategan.ReleaseError, match="no checkpoint"):
        climategan.locate(tmp_path / "empty")
    (tmp_path / "empty" / "checkpoints").mkdir()
    (tmp_path / "empty" / "checkpoints" / "latest_ckpt.pth").write_bytes(b"x")
    with pytest.raises(climategan.ReleaseError, match="no opts.yaml"):
        climategan.locate(tmp_path / "empty")
    (tmp_path / "empty" / "opts.yaml").write_text("gen: {}\n")
    with pytest.raises(climategan.ReleaseError, match="not a readable ClimateGAN checkpoint"):
        climategan.read_generator_state(climategan.locate(tmp_path / "empty").checkpoint)


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = generator_main(["import-climategan", *args])
    return code, out.getvalue(), err.getvalue()


def test_cli_writes_nothing_when_one_model_fails(tmp_path: Path, painter_state) -> None:
    """A painter that does not fit stops the import before the (valid) masker is written."""
    masker = tmp_path / "masker"
    write_part(masker, release_state("masker", seed=6))
    broken = dict(painter_state)
    broken["painter.fc.weight"] = torch.zeros(640, 4, 3, 3)
    painter_file = write_part(tmp_path / "painter", broken)
    code, out, err = run_cli("--masker", str(masker), "--painter", str(painter_file), "--out",
                             str(tmp_path / "out"))
    assert code == 1 and out == ""
    assert "fc.weight: file (640, 4, 3, 3) vs model (640, 3, 3, 3)" in err
    assert not (tmp_path / "out").exists()

    code, _, err = run_cli("--masker", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert code == 1 and "no such file or folder" in err
    with pytest.raises(SystemExit) as usage:
        run_cli("--painter", str(painter_file))
    assert usage.value.code == 2


# ----------------------------------------------------------------------------- the import


def test_imported_checkpoints_load_strictly_and_record_their_source(climategan_checkpoints) -> None:
    masker_path, painter_path = climategan_checkpoints
    masker_ckpt = load_checkpoint(masker_path, "masker")
    painter_ckpt = load_checkpoint(painter_path, "painter")
    assert isinstance(masker_ckpt.config, ClimateGANMaskerConfig)
    assert isinstance(painter_ckpt.config, ClimateGANPainterConfig)
    assert masker_ckpt.step == 123456 and masker_ckpt.metadata["source_epoch"] == 300
    assert len(masker_ckpt.metadata["source_sha256"]) == 64
    assert "13 spectral-norm weights folded" in masker_ckpt.metadata["conversion"]
    assert "23 spectral-norm weights folded" in painter_ckpt.metadata["conversion"]
    assert isinstance(build_model_from_checkpoint(masker_ckpt), ClimateGANMasker)
    assert isinstance(build_model_from_checkpoint(painter_ckpt), ClimateGANPainter)


def test_spectral_norm_is_folded_as_the_published_first_forward(climategan_checkpoints) -> None:
    """W / sigma with sigma from one power iteration started at the stored u (float64 here,
    float32 in the published forward)."""
    painter_state = load_checkpoint(climategan_checkpoints[1], verify_hash=False).state_dict
    source = release_state("painter", seed=1)  # the fixture's painter (seed + 1)
    prefix = "painter.up_spades.3.conv_s.module"
    w = source[f"{prefix}.weight_bar"].double()
    u = source[f"{prefix}.weight_u"].double()
    matrix = w.reshape(w.shape[0], -1)
    v = matrix.t() @ u
    v = v / (v.norm() + 1e-12)
    u = matrix @ v
    u = u / (u.norm() + 1e-12)
    expected = w / torch.dot(u, matrix @ v)
    assert torch.allclose(painter_state["up_spades.3.conv_s.weight"].double(), expected, atol=1e-7)
    assert torch.equal(painter_state["fc.weight"], source["painter.fc.weight"])


def test_combined_masker_file_also_gives_the_painter(tmp_path: Path, climategan_checkpoints) -> None:
    # The masker's values do not matter here: zeros are cheap.
    masker_state = {k: torch.zeros(s) for k, s in release_keys()["masker"].items()}
    combined = {**masker_state, **release_state("painter", seed=1)}
    part = climategan.ReleasePart(tmp_path / "latest_ckpt.pth", tmp_path / "opts.yaml")
    painter = climategan.convert_part("painter", part, combined, RELEASE_OPTS)
    masker = climategan.convert_part("masker", part, combined, RELEASE_OPTS)
    assert painter.ignored == sorted(masker_state) and len(masker.ignored) == 229
    expected = load_checkpoint(climategan_checkpoints[1], verify_hash=False).state_dict
    assert painter.conversion.state_dict.keys() == expected.keys()
    assert all(torch.equal(painter.conversion.state_dict[k], v) for k, v in expected.items())


@pytest.mark.slow
def test_imported_models_run_and_paint_in_range(climategan_checkpoints) -> None:
    masker = build_model_from_checkpoint(climategan_checkpoints[0])
    painter = build_model_from_checkpoint(climategan_checkpoints[1])
    torch.manual_seed(0)
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        out = masker(x)
        assert out.mask_logits.shape == (1, 1, 128, 128) and torch.isfinite(out.mask_logits).all()
        assert torch.equal(out.mask, torch.sigmoid(out.mask_logits))
        assert out.segmentation.shape == (1, 11, 128, 128) and out.depth.shape == (1, 1, 128, 128)
        assert torch.equal(masker(x).mask_logits, out.mask_logits)  # no state changes between calls
        # The painter's latent is 1/128 of the input and instance norm needs 2x2: 256².
        x = torch.rand(1, 3, 256, 256) * 2 - 1
        m = torch.zeros(1, 1, 256, 256)
        m[..., 128:, :] = 1
        painted = painter(x * (1 - m), m)
        assert painted.shape == (1, 3, 256, 256) and torch.isfinite(painted).all()
        assert painted.abs().max() <= 1  # tanh
        assert torch.equal(painter.paint(x, m), x * (1 - m) + painted * m)
    with pytest.raises(ValueError, match="multiples of 128"):
        painter(torch.zeros(1, 3, 192, 192))


@pytest.mark.slow
def test_service_floods_with_imported_weights_cropping_as_published(tmp_path, climategan_checkpoints) -> None:
    masker_path, painter_path = climategan_checkpoints
    pipeline = FloodPipeline.from_checkpoints(masker_path, painter_path, PipelineOptions())
    # the published script's defaults: centre crop at 640, float32 even where "auto" means bf16
    assert (pipeline.frame, pipeline.size, pipeline.precision) == ("crop", 640, "fp32")
    rng = np.random.default_rng(0)
    photo = tmp_path / "street.png"
    Image.fromarray(rng.integers(0, 256, (150, 200, 3), dtype=np.uint8)).save(photo)
    record = flood_file(photo, tmp_path / "out", {"threshold": 0.4, "size": 256}, pipeline)
    result = np.asarray(Image.open(record.output))
    mask = np.asarray(Image.open(record.mask))
    assert result.shape == (150, 200, 3) and mask.shape == (150, 200)
    assert set(np.unique(mask)) <= {0, 255}
    source = np.asarray(Image.open(photo))
    assert np.array_equal(result[mask == 0], source[mask == 0])  # pasted outside the water
    ckpts = [load_checkpoint(p, verify_hash=False).content_hash for p in climategan_checkpoints]
    assert record.model_version == "-".join(ckpts) and record.params["frame"] == "crop"
    stored = json.loads(Path(record.record).read_text())
    assert stored["params"]["size"] == 256


def test_flood_command_accepts_imported_checkpoints(tmp_path, climategan_checkpoints) -> None:
    from generator.flood_cli import resolve_checkpoints

    masker_path, painter_path = climategan_checkpoints
    assert resolve_checkpoints([str(painter_path), str(masker_path)]) == (str(masker_path), str(painter_path))
