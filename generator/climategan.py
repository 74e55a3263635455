"""Import the published ClimateGAN weights (``release-github-v1.zip``) into this project's format.

A release holds a masker folder and a painter folder, each with ``opts.yaml`` (the trainer's
full configuration) and ``checkpoints/latest_ckpt.pth`` (a dict whose ``"G"`` entry is the
generator's state dict). :func:`import_release` reads both, builds the architecture the options
describe (:class:`~generator.config.ClimateGANMaskerConfig`,
:class:`~generator.config.ClimateGANPainterConfig`), folds spectral norm as the published forward
computes it (one power iteration from the stored ``u``), renames the keys (drops the
spectral-norm wrapper ``.module.`` and the painter's ``painter.`` prefix), checks every name and
shape against the model, and only then writes ``masker.pt`` and ``painter.pt``::

    python -m generator import-climategan --masker DIR|FILE [--painter DIR|FILE] --out OUT

A masker file that also holds the painter's keys (one ``"G"`` for both) is split; its painter is
used when ``--painter`` is not given. Options the published code supports but the release does
not use, and that this project does not implement (other encoders, noise input, the painter's
final shortcut, ...), are refused by name. The release's weights are the authors' (see their
repository for the terms); this module ships none.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor

from generator.checkpoint import (
    ConversionReport,
    convert_climategan_state_dict,
    instantiate_model,
    save_checkpoint,
)
from generator.config import (
    CLIMATEGAN_CONV_NORMS,
    ClimateGANMaskerConfig,
    ClimateGANPainterConfig,
    ConfigBase,
)
from generator.models.common import StateDictMismatchError, check_state_dict

RELEASE_URL = "https://github.com/cc-ai/climategan"
CHECKPOINT_RELATIVE = Path("checkpoints") / "latest_ckpt.pth"
PAINTER_PREFIX = "painter."
_SPECTRAL = re.compile(r"(.*)\.weight_(bar|u|v)")


class ReleaseError(ValueError):
    """A release folder or file that cannot be imported; the message says what and where."""


class UnsupportedOptionError(ReleaseError):
    """An ``opts.yaml`` option whose architecture this importer does not reproduce."""


# ----------------------------------------------------------------------------- files


@dataclass(frozen=True)
class ReleasePart:
    """One model's files: the checkpoint and the ``opts.yaml`` that describes it."""

    checkpoint: Path
    opts: Path


def locate(path: str | Path) -> ReleasePart:
    """The checkpoint and options of a release folder, or of a ``.pth`` file inside one
    (``<folder>/checkpoints/latest_ckpt.pth`` with ``<folder>/opts.yaml``; an ``opts.yaml`` next
    to the file is also accepted)."""
    path = Path(path)
    if path.is_dir():
        checkpoint, opts = path / CHECKPOINT_RELATIVE, path / "opts.yaml"
    elif path.is_file():
        checkpoint = path
        candidates = [path.parent.parent / "opts.yaml", path.parent / "opts.yaml"]
        opts = next((c for c in candidates if c.is_file()), candidates[0])
    else:
        raise ReleaseError(f"{path}: no such file or folder")
    if not checkpoint.is_file():
        raise ReleaseError(f"{path}: no checkpoint at {checkpoint}")
    if not opts.is_file():
        raise ReleaseError(f"{path}: no opts.yaml (looked for {opts})")
    return ReleasePart(checkpoint, opts)


def read_opts(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ReleaseError(f"{path}: unreadable opts.yaml: {error}") from error
    if not isinstance(data, dict):
        raise ReleaseError(f"{path}: opts.yaml is not a mapping")
    return data


def read_generator_state(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The ``"G"`` state dict of a release checkpoint and its other scalar entries (epoch,
    step). Read with ``weights_only=True``: a file that needs arbitrary unpickling is refused."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors come in many types
        raise ReleaseError(f"{path}: not a readable ClimateGAN checkpoint: {error}") from error
    if not isinstance(payload, dict) or not isinstance(payload.get("G"), Mapping):
        raise ReleaseError(f"{path}: expected a dict with a 'G' state dict (ClimateGAN format)")
    state = {str(k).removeprefix("module."): v for k, v in payload["G"].items()}
    bad = sorted(k for k, v in state.items() if not isinstance(v, Tensor))
    if bad:
        raise ReleaseError(f"{path}: non-tensor entries in 'G': {bad[:5]}")
    info = {k: payload[k] for k in ("epoch", "step") if isinstance(payload.get(k), int)}
    return state, info


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- options

# The trainer's defaults (shared/trainer/defaults.yaml) for the options read here, so a partial
# opts.yaml means what it would have meant to the published trainer.
_DEFAULTS: dict[str, Any] = {
    "tasks": ["d", "s", "m", "p"],
    "data.normalization": "default",
    "gen.encoder.architecture": "deeplabv3",
    "gen.deeplabv3.backbone": "resnet",
    "gen.deeplabv3.output_stride": 8,
    "gen.d.architecture": "dada",
    "gen.d.upsample_featuremaps": True,
    "gen.d.classify.enable": False,
    "gen.s.architecture": "deeplabv3",
    "gen.s.output_dim": 11,
    "gen.s.use_dada": True,
    "gen.m.use_spade": False,
    "gen.m.use_dada": False,
    "gen.m.output_dim": 1,
    "gen.m.use_proj": True,
    "gen.m.proj_dim": 64,
    "gen.m.n_upsample": 3,
    "gen.m.n_res": 3,
    "gen.m.norm": "spectral",
    "gen.m.activ": "lrelu",
    "gen.m.pad_type": "reflect",
    "gen.m.use_low_level_feats": True,
    "gen.m.spade.latent_dim": 128,
    "gen.m.spade.cond_nc": 15,
    "gen.m.spade.spade_param_free_norm": "batch",
    "gen.m.spade.num_layers": 3,
    "gen.m.spade.activations.all_lrelu": True,
    "gen.p.latent_dim": 640,
    "gen.p.no_z": True,
    "gen.p.spade_n_up": 7,
    "gen.p.spade_param_free_norm": "instance",
    "gen.p.use_final_shortcut": False,
}


def _get(opts: Mapping[str, Any], dotted: str) -> Any:
    node: Any = opts
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _DEFAULTS[dotted]
        node = node[part]
    return node


def _require(opts: Mapping[str, Any], dotted: str, allowed: tuple[Any, ...], why: str = "") -> Any:
    value = _get(opts, dotted)
    if value not in allowed:
        shown = " or ".join(repr(a) for a in allowed)
        raise UnsupportedOptionError(
            f"unsupported option {dotted}={value!r}: this importer reproduces {shown}"
            + (f" ({why})" if why else "")
        )
    return value


def _positive_int(opts: Mapping[str, Any], dotted: str) -> int:
    value = _get(opts, dotted)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UnsupportedOptionError(f"option {dotted}={value!r} must be a positive integer")
    return value


def _target_sizes(opts: Mapping[str, Any]) -> tuple[int, int]:
    """(depth, segmentation) target sizes: the last transform's ``new_size`` (default 160)."""
    transforms = _get_transforms(opts)
    new_size = transforms[-1].get("new_size", 160) if transforms else 160
    if isinstance(new_size, Mapping):
        default = new_size.get("default", 640)
        sizes = (new_size.get("d", default), new_size.get("s", default))
    else:
        sizes = (new_size, new_size)
    if not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes):
        raise UnsupportedOptionError(f"data.transforms[-1].new_size={new_size!r} is not a size")
    return sizes


def _get_transforms(opts: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    data = opts.get("data")
    transforms = data.get("transforms") if isinstance(data, Mapping) else None
    if transforms is None:
        return []
    if not isinstance(transforms, list) or not all(isinstance(t, Mapping) for t in transforms):
        raise UnsupportedOptionError("data.transforms must be a list of mappings")
    return transforms


def _tasks(opts: Mapping[str, Any]) -> set[str]:
    tasks = _get(opts, "tasks")
    if not isinstance(tasks, list):
        raise UnsupportedOptionError(f"tasks={tasks!r} must be a list")
    return {str(t) for t in tasks}


def masker_config_from_opts(opts: Mapping[str, Any]) -> ClimateGANMaskerConfig:
    """The masker architecture an ``opts.yaml`` describes; refuses what is not reproduced."""
    missing = {"d", "s", "m"} - _tasks(opts)
    if missing:
        raise UnsupportedOptionError(
            f"the masker's tasks must include d, s and m (missing {sorted(missing)})"
        )
    _require(opts, "data.normalization", ("default",), "inputs in [-1, 1]")
    _require(opts, "gen.encoder.architecture", ("deeplabv3",))
    _require(opts, "gen.deeplabv3.backbone", ("resnet",), "ResNet-101")
    _require(opts, "gen.deeplabv3.output_stride", (8,))
    _require(opts, "gen.d.architecture", ("dada",))
    _require(opts, "gen.d.classify.enable", (False,), "regressed depth")
    _require(opts, "gen.s.architecture", ("deeplabv3",))
    _require(opts, "gen.m.output_dim", (1,))
    num_classes = _positive_int(opts, "gen.s.output_dim")
    depth_size, seg_size = _target_sizes(opts)
    use_spade = bool(_require(opts, "gen.m.use_spade", (True, False)))
    fields: dict[str, Any] = {
        "num_classes": num_classes,
        "depth_upsample_featuremaps": bool(_require(opts, "gen.d.upsample_featuremaps", (True, False))),
        "depth_target_size": depth_size,
        "segmentation_target_size": seg_size,
        "segmentation_use_dada": bool(_require(opts, "gen.s.use_dada", (True, False))),
        "mask_use_dada": bool(_require(opts, "gen.m.use_dada", (True, False))),
        "mask_use_spade": use_spade,
    }
    if use_spade:
        fields.update(
            mask_use_proj=bool(_require(opts, "gen.m.use_proj", (True, False))),
            mask_proj_dim=_positive_int(opts, "gen.m.proj_dim"),
            spade_latent_dim=_positive_int(opts, "gen.m.spade.latent_dim"),
            spade_cond_channels=_require(opts, "gen.m.spade.cond_nc",
                                         (num_classes + 4, num_classes + 1)),
            spade_num_layers=_positive_int(opts, "gen.m.spade.num_layers"),
            spade_param_free_norm=_require(opts, "gen.m.spade.spade_param_free_norm",
                                           ("batch", "instance")),
            spade_last_lrelu=bool(_require(opts, "gen.m.spade.activations.all_lrelu", (True, False))),
        )
        if fields["spade_latent_dim"] % 2 ** fields["spade_num_layers"]:
            raise UnsupportedOptionError("gen.m.spade.latent_dim must be divisible by "
                                         "2**gen.m.spade.num_layers")
    else:
        fields.update(
            mask_proj_dim=_positive_int(opts, "gen.m.proj_dim"),
            mask_n_upsample=_positive_int(opts, "gen.m.n_upsample"),
            mask_n_res=int(_get(opts, "gen.m.n_res")),
            mask_norm=_require(opts, "gen.m.norm", CLIMATEGAN_CONV_NORMS),
            mask_activation=_require(opts, "gen.m.activ", ("relu", "lrelu", "none")),
            mask_pad_type=_require(opts, "gen.m.pad_type", ("zero", "reflect", "replicate")),
            mask_use_low_level_feats=bool(_require(opts, "gen.m.use_low_level_feats", (True, False))),
        )
    return ClimateGANMaskerConfig(**fields)


def painter_config_from_opts(opts: Mapping[str, Any]) -> ClimateGANPainterConfig:
    """The painter architecture an ``opts.yaml`` describes; refuses what is not reproduced."""
    if "p" not in _tasks(opts):
        raise UnsupportedOptionError("the painter's tasks must include p")
    _require(opts, "data.normalization", ("default",), "inputs in [-1, 1]")
    _require(opts, "gen.p.no_z", (True,), "the release's painter has no noise input")
    _require(opts, "gen.p.use_final_shortcut", (False,))
    latent = _positive_int(opts, "gen.p.latent_dim")
    n_up = _positive_int(opts, "gen.p.spade_n_up")
    if n_up < 2 or latent % 2 ** (n_up - 2):
        raise UnsupportedOptionError(
            f"gen.p.spade_n_up={n_up} needs at least 2 upsamplings and a latent_dim divisible by "
            f"2**(spade_n_up - 2)"
        )
    return ClimateGANPainterConfig(
        latent_channels=latent,
        num_upsamplings=n_up,
        param_free_norm=_require(opts, "gen.p.spade_param_free_norm", ("batch", "instance")),
    )


# ----------------------------------------------------------------------------- weights


def _check_spectral_triples(state: Mapping[str, Tensor], source: str) -> None:
    """Every ``weight_bar`` has ``weight_u`` (out) and ``weight_v`` (in x kernel) of the right
    sizes; a stray ``u`` or ``v`` is an error too."""
    prefixes: dict[str, set[str]] = {}
    for key in state:
        match = _SPECTRAL.fullmatch(key)
        if match:
            prefixes.setdefault(match.group(1), set()).add(match.group(2))
    problems = []
    for prefix, parts in sorted(prefixes.items()):
        if parts != {"bar", "u", "v"}:
            problems.append(f"{prefix}: has weight_{'/'.join(sorted(parts))}, needs bar, u and v")
            continue
        weight = state[f"{prefix}.weight_bar"]
        rows, cols = weight.shape[0], weight[0].numel() if weight.dim() else 0
        u, v = state[f"{prefix}.weight_u"], state[f"{prefix}.weight_v"]
        if tuple(u.shape) != (rows,) or tuple(v.shape) != (cols,):
            problems.append(f"{prefix}: weight_u {tuple(u.shape)} / weight_v {tuple(v.shape)} "
                            f"do not fit weight_bar {tuple(weight.shape)}")
    if problems:
        raise ReleaseError(f"{source}: bad spectral-norm tensors: " + "; ".join(problems))


def _masker_key(key: str) -> str | None:
    return None if key.startswith(PAINTER_PREFIX) else key.replace(".module.", ".")


def _painter_key(key: str) -> str | None:
    if not key.startswith(PAINTER_PREFIX):
        return None
    return key.removeprefix(PAINTER_PREFIX).replace(".module.", ".")


@dataclass
class ImportedModel:
    """One converted model, checked against its architecture, not yet written."""

    kind: str
    config: ConfigBase
    conversion: ConversionReport
    source: ReleasePart
    info: dict[str, Any]
    ignored: list[str] = field(default_factory=list)  # the other model's keys in the same file

    @property
    def parameters(self) -> int:
        return sum(v.numel() for k, v in self.conversion.state_dict.items()
                   if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))

    def summary(self) -> str:
        return (f"{self.kind}: {self.source.checkpoint} -> {self.conversion.summary()}; "
                f"{self.parameters / 1e6:.2f} M parameters"
                + (f"; {len(self.ignored)} {_other(self.kind)} keys in the file ignored"
                   if self.ignored else ""))


def _other(kind: str) -> str:
    return "painter" if kind == "masker" else "masker"


def convert_part(kind: str, part: ReleasePart, state: Mapping[str, Tensor] | None = None,
                 opts: Mapping[str, Any] | None = None,
                 info: Mapping[str, Any] | None = None) -> ImportedModel:
    """Build ``kind``'s config from the part's options, fold and rename its weights and check
    every name and shape against the model (raises, naming the keys, on any mismatch).

    ``state``, ``opts`` and ``info`` (epoch, step) are read from the part's files unless given.
    """
    from generator.checkpoint import build_model

    opts = read_opts(part.opts) if opts is None else opts
    info = dict(info or {})
    if state is None:
        state, info = read_generator_state(part.checkpoint)
    config: ConfigBase
    if kind == "masker":
        config, key_map = masker_config_from_opts(opts), _masker_key
    else:
        config, key_map = painter_config_from_opts(opts), _painter_key
    mine = {k: v for k, v in state.items() if key_map(k) is not None}
    ignored = sorted(set(state) - set(mine))
    if not mine:
        raise ReleaseError(f"{part.checkpoint}: holds no {kind} weights")
    _check_spectral_triples(mine, str(part.checkpoint))
    conversion = convert_climategan_state_dict(mine, key_map)
    with torch.device("meta"):  # names and shapes only
        model = build_model(kind, config)
    check_state_dict(model, conversion.state_dict, context=f"{kind} from {part.checkpoint}")
    return ImportedModel(kind, config, conversion, part, info, ignored)


@dataclass
class ImportReport:
    masker: ImportedModel
    painter: ImportedModel
    outputs: dict[str, Path]
    hashes: dict[str, str]

    def lines(self) -> list[str]:
        out = [self.masker.summary(), self.painter.summary()]
        out += [f"wrote {self.outputs[k]} (version {self.hashes[k]})" for k in ("masker", "painter")]
        return out


def import_release(masker: str | Path, painter: str | Path | None, out: str | Path) -> ImportReport:
    """Convert a release's masker and painter into ``out/masker.pt`` and ``out/painter.pt``.

    ``painter`` None: the painter's keys are taken from the masker's file (a combined
    checkpoint) and its options from the masker's ``opts.yaml``. Both models are converted and
    checked before either file is written.
    """
    masker_part = locate(masker)
    masker_state, masker_info = read_generator_state(masker_part.checkpoint)
    masker_model = convert_part("masker", masker_part, masker_state, info=masker_info)
    if painter is None:
        painter_model = convert_part("painter", masker_part, masker_state, info=masker_info)
    else:
        painter_model = convert_part("painter", locate(painter))
    out = Path(out)
    outputs = {"masker": out / "masker.pt", "painter": out / "painter.pt"}
    hashes = {}
    for imported in (masker_model, painter_model):
        hashes[imported.kind] = _write(imported, outputs[imported.kind])
    return ImportReport(masker_model, painter_model, outputs, hashes)


def _write(imported: ImportedModel, path: Path) -> str:
    model = instantiate_model(imported.kind, imported.config, imported.conversion.state_dict)
    metadata = {
        "source": "ClimateGAN release (Schmidt et al., ICLR 2022)",
        "source_url": RELEASE_URL,
        "source_checkpoint": str(imported.source.checkpoint),
        "source_sha256": sha256_file(imported.source.checkpoint),
        "source_opts": str(imported.source.opts),
        "conversion": imported.conversion.summary(),
        "weights_terms": "the authors'; see the release",
        **{f"source_{k}": v for k, v in imported.info.items()},
    }
    return save_checkpoint(path, model, imported.config, kind=imported.kind,
                           step=int(imported.info.get("step", 0)), metadata=metadata)


# ----------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m generator import-climategan",
        description="Convert the published ClimateGAN masker and painter into this project's "
                    "checkpoints (OUT/masker.pt, OUT/painter.pt).",
    )
    parser.add_argument("--masker", required=True, metavar="DIR|FILE",
                        help="the release's masker folder (opts.yaml + checkpoints/latest_ckpt.pth) "
                             "or its .pth file")
    parser.add_argument("--painter", metavar="DIR|FILE",
                        help="the painter folder or .pth file (default: the painter keys of the "
                             "masker's file)")
    parser.add_argument("--out", required=True, metavar="OUT", help="output folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = import_release(args.masker, args.painter, args.out)
    except (ValueError, OSError, StateDictMismatchError) as error:  # ReleaseError is a ValueError
        print(f"import-climategan: error: {error}", file=sys.stderr)
        return 1
    for line in report.lines():
        print(line)
    return 0
