"""Checkpoint round trips, content-hash stability, clear errors, ClimateGAN conversion."""

from __future__ import annotations

import json

import pytest
import torch

from generator import checkpoint as ckpt
from generator.config import MaskerConfig, PainterConfig, tiny_masker_config, tiny_painter_config
from generator.models import Masker, Painter, build_masker, build_painter
from generator.models.common import StateDictMismatchError, check_state_dict
from generator.optim import ExtraAdam


@pytest.fixture
def masker() -> tuple[Masker, MaskerConfig]:
    torch.manual_seed(0)
    cfg = tiny_masker_config()
    return build_masker(cfg), cfg


def test_config_dict_round_trip() -> None:
    for cfg in (MaskerConfig(), tiny_masker_config("mobilenet_v2"), PainterConfig(), tiny_painter_config()):
        data = cfg.to_dict()
        json.dumps(data)  # plain types only
        assert type(cfg).from_dict(data) == cfg
    with pytest.raises(ValueError, match="unknown keys"):
        MaskerConfig.from_dict({"bogus": 1})


def test_masker_round_trip_preserves_outputs_and_metadata(tmp_path, masker) -> None:
    model, cfg = masker
    opt = ExtraAdam(model.parameters(), lr=1e-4)
    model(torch.rand(2, 3, 32, 32)).mask.mean().backward()
    opt.step()
    path = tmp_path / "runs" / "masker.pt"
    version = ckpt.save_checkpoint(
        path, model, cfg, step=42, optimizers={"opt": opt}, metadata={"note": "test"}
    )
    assert len(version) == 16 and all(c in "0123456789abcdef" for c in version)
    assert [p.name for p in path.parent.iterdir()] == ["masker.pt"]  # no temporary file left

    loaded = ckpt.load_checkpoint(path, "masker")
    assert loaded.kind == "masker" and loaded.step == 42 and loaded.content_hash == version
    assert loaded.config == cfg and loaded.metadata == {"note": "test"}
    assert loaded.optimizers["opt"]["state"][0]["step"] == 1
    x = torch.rand(1, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x).mask, loaded.model(x).mask)
    assert loaded.model is loaded.model  # built once
    rebuilt = ckpt.build_model_from_checkpoint(path, "masker")
    assert isinstance(rebuilt, Masker) and not rebuilt.training


def test_painter_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    cfg = tiny_painter_config()
    painter = build_painter(cfg)
    painter(torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32))  # moves spectral-norm vectors
    path = tmp_path / "painter.pt"
    ckpt.save_checkpoint(path, painter, cfg, kind="painter", step=3)
    model = ckpt.build_model_from_checkpoint(path)
    assert isinstance(model, Painter)
    painter.eval()
    x, m = torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(painter(x, m), model(x, m))


def test_content_hash_stable_and_sensitive(tmp_path, masker) -> None:
    model, cfg = masker
    first = ckpt.save_checkpoint(tmp_path / "a.pt", model, cfg, step=1, metadata={"a": 1})
    second = ckpt.save_checkpoint(tmp_path / "b.pt", model, cfg, step=99)
    assert first == second == ckpt.content_hash(model.state_dict(), cfg)  # step/metadata ignored
    # the pretrained path is an initialisation detail, not part of the version
    with_path = tiny_masker_config()
    with_path.encoder.backbone.pretrained_path = "/somewhere/resnet18.pth"
    assert ckpt.content_hash(model.state_dict(), with_path) == first
    changed_cfg = tiny_masker_config()
    changed_cfg.mask_decoder.detach_conditioning = True
    assert ckpt.content_hash(model.state_dict(), changed_cfg) != first
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 1e-3
    assert ckpt.content_hash(model.state_dict(), cfg) != first


def test_mismatched_weights_name_every_key(tmp_path, masker) -> None:
    model, cfg = masker
    path = tmp_path / "m.pt"
    ckpt.save_checkpoint(path, model, cfg)
    payload = torch.load(path, weights_only=True)
    state = payload["state_dict"]
    state.pop("mask_decoder.output_conv.bias")
    state["surprise.weight"] = torch.zeros(1)
    state["encoder.aspp.pooling.1.bias"] = torch.zeros(7)
    payload["content_hash"] = None  # skip corruption detection, test key validation
    torch.save(payload, path)
    with pytest.raises(StateDictMismatchError) as error:
        ckpt.build_model_from_checkpoint(path)
    message = str(error.value)
    assert "missing keys (1): mask_decoder.output_conv.bias" in message
    assert "unexpected keys (1): surprise.weight" in message
    assert "encoder.aspp.pooling.1.bias: file (7,) vs model (48,)" in message


def test_load_rejects_wrong_kind_corruption_and_foreign_files(tmp_path, masker) -> None:
    model, cfg = masker
    path = tmp_path / "m.pt"
    ckpt.save_checkpoint(path, model, cfg)
    with pytest.raises(ckpt.CheckpointError, match="expected a painter"):
        ckpt.load_checkpoint(path, "painter")

    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["mask_decoder.output_conv.bias"] += 1
    torch.save(payload, path)
    with pytest.raises(ckpt.CheckpointError, match="corrupted"):
        ckpt.load_checkpoint(path)
    assert ckpt.load_checkpoint(path, verify_hash=False).kind == "masker"

    foreign = tmp_path / "climategan.pt"
    torch.save({"epoch": 1, "G": {}, "step": 5}, foreign)
    with pytest.raises(ckpt.CheckpointError, match="ClimateGAN"):
        ckpt.load_checkpoint(foreign)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ckpt.CheckpointError, match="not a readable"):
        ckpt.load_checkpoint(garbage)
    with pytest.raises(FileNotFoundError):
        ckpt.load_checkpoint(tmp_path / "absent.pt")


def test_save_rejects_kind_that_contradicts_config(tmp_path, masker) -> None:
    model, cfg = masker
    with pytest.raises(ckpt.CheckpointError, match="does not match"):
        ckpt.save_checkpoint(tmp_path / "x.pt", model, cfg, kind="painter")


def test_fold_spectral_weight_divides_by_largest_singular_value() -> None:
    weight = torch.diag(torch.tensor([3.0, 1.0], dtype=torch.float64)).reshape(2, 2, 1, 1)
    u = torch.tensor([1.0, 0.0], dtype=torch.float64)
    folded = ckpt.fold_spectral_weight(weight, u, None, power_iterations=1)
    # sigma_max = 3 and u is its singular vector: W / 3
    assert torch.allclose(folded, weight / 3)


def test_convert_climategan_state_dict_folds_and_renames() -> None:
    torch.manual_seed(0)
    w = torch.randn(4, 3, 3, 3)
    u = torch.nn.functional.normalize(torch.randn(4), dim=0)
    v = torch.nn.functional.normalize(torch.randn(27), dim=0)
    source = {
        "epoch": 3,
        "G": {
            "module.painter.head_0.conv_0.weight_bar": w,
            "module.painter.head_0.conv_0.weight_u": u,
            "module.painter.head_0.conv_0.weight_v": v,
            "module.painter.head_0.conv_0.bias": torch.zeros(4),
            "module.painter.fc.weight": torch.ones(2),
            "module.masker.whatever": torch.ones(1),
        },
    }
    report = ckpt.convert_climategan_state_dict(source, {"painter.": "", "painter.fc.": "fc_new."})
    assert set(report.state_dict) == {"head_0.conv_0.weight", "head_0.conv_0.bias", "fc_new.weight"}
    assert (report.folded, report.renamed, report.kept, report.dropped) == (1, 3, 0, ["masker.whatever"])
    assert "1 spectral-norm weights folded" in report.summary()
    # the folded weight is W / sigma after one power iteration from u (ClimateGAN's forward)
    matrix = w.reshape(4, -1)
    v1 = matrix.t() @ u
    v1 = v1 / v1.norm()
    u1 = matrix @ v1
    u1 = u1 / u1.norm()
    sigma = torch.dot(u1, matrix @ v1)
    assert torch.allclose(report.state_dict["head_0.conv_0.weight"], w / sigma, atol=1e-6)
    # a power-iteration sigma never exceeds the true largest singular value
    folded_norm = torch.linalg.matrix_norm(report.state_dict["head_0.conv_0.weight"].reshape(4, -1), 2)
    assert folded_norm >= 1.0 - 1e-5


def test_converted_weights_load_into_a_model_without_spectral_norm() -> None:
    torch.manual_seed(0)
    cfg = tiny_painter_config()
    cfg.spectral_norm = False
    plain = build_painter(cfg)
    # Fake a ClimateGAN file: every conv of the SPADE blocks stored as weight_bar/u/v.
    source = {}
    for key, value in plain.state_dict().items():
        is_block_conv = any(f".{name}.weight" in key for name in ("conv_0", "conv_1", "conv_s"))
        if is_block_conv:
            prefix = key.removesuffix(".weight")
            source[f"painter.{prefix}.weight_bar"] = value * 2
            source[f"painter.{prefix}.weight_u"] = torch.nn.functional.normalize(torch.randn(value.shape[0]), dim=0)
            source[f"painter.{prefix}.weight_v"] = torch.nn.functional.normalize(torch.randn(value[0].numel()), dim=0)
        else:
            source[f"painter.{key}"] = value
    report = ckpt.convert_climategan_state_dict({"G": source}, {"painter.": ""})
    check_state_dict(plain, report.state_dict)
    plain.load_state_dict(report.state_dict)
    assert report.folded == sum(1 for k in plain.state_dict() if ".conv_" in k and k.endswith("weight"))
