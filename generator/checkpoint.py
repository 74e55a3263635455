"""One-file model checkpoints with a content hash used as the model version.

A checkpoint is a ``torch.save`` of a plain dict::

    {"format_version": 1, "kind": "masker" | "painter", "config": {...}, "state_dict": {...},
     "step": int, "optimizers": {name: state_dict} | None, "metadata": {...},
     "extra": {...} | None, "content_hash": "16 hex chars"}

It is written atomically (temporary file in the same folder, then ``os.replace``) and read with
``weights_only=True`` (no arbitrary code). ``content_hash`` is a SHA-256 over the state dict
(sorted keys; each key, dtype, shape and raw bytes) and the JSON of the config, truncated to 16
hex characters: two files with the same weights and architecture share a version, whatever their
step, optimizer state or metadata. The backbone's ``pretrained_path`` is cleared in the stored
config (the weights are in the file; the original path is kept in ``metadata``).

``convert_climategan_state_dict`` turns a published ClimateGAN state dict into plain weights
(spectral norm folded) under this project's key names; ``generator.climategan`` uses it to
import a whole release (``python -m generator import-climategan``). Imported architectures are
stored with an ``"architecture"`` entry in their config (``ARCHITECTURE_CONFIG_CLASSES``), which
this project's own configs lack, so their stored dicts and hashes did not change.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from generator.config import (
    CLIMATEGAN_ARCHITECTURE,
    ClimateGANMaskerConfig,
    ClimateGANPainterConfig,
    ConfigBase,
    MaskerConfig,
    PainterConfig,
)
from generator.files import replacing
from generator.models.common import check_state_dict

FORMAT_VERSION = 1
HASH_LENGTH = 16
CONFIG_CLASSES: dict[str, type[ConfigBase]] = {"masker": MaskerConfig, "painter": PainterConfig}
# Imported published architectures, told apart by the config's "architecture" entry (this
# project's own configs have none, so their stored dicts and content hashes are unchanged).
ARCHITECTURE_CONFIG_CLASSES: dict[tuple[str, str], type[ConfigBase]] = {
    ("masker", CLIMATEGAN_ARCHITECTURE): ClimateGANMaskerConfig,
    ("painter", CLIMATEGAN_ARCHITECTURE): ClimateGANPainterConfig,
}
REQUIRED_KEYS = ("format_version", "kind", "config", "state_dict", "step")


class CheckpointError(ValueError):
    """A file that is not a valid checkpoint of the expected kind."""


def _unwrap(model: nn.Module) -> nn.Module:
    model = getattr(model, "_orig_mod", model)  # torch.compile
    if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
        model = model.module
    return model


def _config_dict(config: ConfigBase | Mapping[str, Any]) -> dict[str, Any]:
    data = config.to_dict() if isinstance(config, ConfigBase) else json.loads(json.dumps(config))
    backbone = data.get("encoder", {}).get("backbone")
    if isinstance(backbone, dict):
        backbone["pretrained_path"] = None
    return data


def _kind_of(config: ConfigBase | Mapping[str, Any]) -> str | None:
    for kind, cls in CONFIG_CLASSES.items():
        if isinstance(config, cls):
            return kind
    for (kind, _), cls in ARCHITECTURE_CONFIG_CLASSES.items():
        if isinstance(config, cls):
            return kind
    return None


def config_class(kind: str, data: Mapping[str, Any]) -> type[ConfigBase]:
    """The config class of a stored ``kind`` config dict (by its ``architecture`` entry)."""
    architecture = data.get("architecture") if isinstance(data, Mapping) else None
    if architecture is None:
        return CONFIG_CLASSES[kind]
    try:
        return ARCHITECTURE_CONFIG_CLASSES[(kind, architecture)]
    except KeyError:
        raise CheckpointError(f"unknown {kind} architecture {architecture!r}") from None


def content_hash(
    state_dict: Mapping[str, Tensor],
    config: ConfigBase | Mapping[str, Any],
    length: int = HASH_LENGTH,
) -> str:
    """SHA-256 of the weights and the config, as ``length`` hex characters."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach().to("cpu").contiguous()
        digest.update(key.encode())
        digest.update(f"|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    digest.update(json.dumps(_config_dict(config), sort_keys=True).encode())
    return digest.hexdigest()[:length]


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    config: ConfigBase,
    *,
    kind: str | None = None,
    step: int = 0,
    optimizers: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Write ``model``'s weights and ``config`` to ``path`` atomically; return the content hash.

    ``optimizers`` maps names to optimizer state dicts (or optimizers); ``extra`` may hold other
    tensors or plain values (e.g. a discriminator's state dict). Metadata must be JSON-like.
    """
    inferred = _kind_of(config)
    kind = kind or inferred
    if kind not in CONFIG_CLASSES:
        raise CheckpointError(f"unknown checkpoint kind {kind!r}; expected one of {list(CONFIG_CLASSES)}")
    if inferred is not None and inferred != kind:
        raise CheckpointError(f"kind {kind!r} does not match a {type(config).__name__}")
    state_dict = {k: v.detach().to("cpu").clone() for k, v in _unwrap(model).state_dict().items()}
    version = content_hash(state_dict, config)
    meta = dict(metadata or {})
    pretrained = getattr(getattr(getattr(config, "encoder", None), "backbone", None), "pretrained_path", None)
    if pretrained:
        meta.setdefault("pretrained_path", pretrained)
    payload = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": _config_dict(config),
        "state_dict": state_dict,
        "step": int(step),
        "optimizers": (
            {name: o.state_dict() if hasattr(o, "state_dict") else o for name, o in optimizers.items()}
            if optimizers
            else None
        ),
        "metadata": meta,
        "extra": dict(extra) if extra else None,
        "content_hash": version,
    }
    with replacing(path) as temporary:
        torch.save(payload, temporary)
    return version


@dataclass
class LoadedCheckpoint:
    """A validated checkpoint; ``model`` builds (once) the network with the stored weights."""

    path: Path
    kind: str
    config: ConfigBase
    state_dict: dict[str, Tensor]
    step: int
    content_hash: str
    format_version: int = FORMAT_VERSION
    optimizers: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] | None = None

    @functools.cached_property
    def model(self) -> nn.Module:
        return build_model_from_checkpoint(self)


def load_checkpoint(
    path: str | Path,
    expected_kind: str | None = None,
    *,
    map_location: str | torch.device = "cpu",
    verify_hash: bool = True,
) -> LoadedCheckpoint:
    """Read and validate a checkpoint (format, kind, config, and the hash unless disabled)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # unpickling errors come in many types
        raise CheckpointError(f"{path} is not a readable checkpoint: {error}") from error
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path} does not contain a checkpoint dict")
    absent = [key for key in REQUIRED_KEYS if key not in payload]
    if absent:
        hint = " (a ClimateGAN file? import it with python -m generator import-climategan)" if "G" in payload else ""
        raise CheckpointError(f"{path} lacks checkpoint fields {absent}{hint}")
    if payload["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format_version {payload['format_version']}, this code reads {FORMAT_VERSION}"
        )
    kind = payload["kind"]
    if kind not in CONFIG_CLASSES:
        raise CheckpointError(f"{path} has unknown kind {kind!r}")
    if expected_kind is not None and kind != expected_kind:
        raise CheckpointError(f"{path} holds a {kind} checkpoint, expected a {expected_kind}")
    try:
        config = config_class(kind, payload["config"]).from_dict(payload["config"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path} has an invalid {kind} config: {error}") from error
    version = content_hash(payload["state_dict"], config) if verify_hash else payload.get("content_hash")
    stored = payload.get("content_hash")
    if verify_hash and stored is not None and stored != version:
        raise CheckpointError(f"{path} is corrupted: content hash {version} != stored {stored}")
    return LoadedCheckpoint(
        path=path,
        kind=kind,
        config=config,
        state_dict=payload["state_dict"],
        step=int(payload["step"]),
        content_hash=str(version),
        format_version=payload["format_version"],
        optimizers=payload.get("optimizers"),
        metadata=payload.get("metadata") or {},
        extra=payload.get("extra"),
    )


def build_model(kind: str, config: ConfigBase) -> nn.Module:
    from generator.models import build_masker, build_painter

    builders: dict[str, Callable[[Any], nn.Module]] = {"masker": build_masker, "painter": build_painter}
    model = builders[kind](config)
    if _kind_of(config) != kind:
        raise CheckpointError(f"a {type(config).__name__} does not describe a {kind}")
    return model


def build_model_from_checkpoint(
    checkpoint: LoadedCheckpoint | str | Path,
    expected_kind: str | None = None,
    *,
    map_location: str | torch.device = "cpu",
) -> nn.Module:
    """The masker or painter of a checkpoint, weights loaded, in eval mode.

    Raises :class:`~generator.models.common.StateDictMismatchError` listing missing, unexpected
    and shape-mismatched keys when the weights do not fit the stored config.
    """
    if not isinstance(checkpoint, LoadedCheckpoint):
        checkpoint = load_checkpoint(checkpoint, expected_kind, map_location=map_location)
    elif expected_kind is not None and checkpoint.kind != expected_kind:
        raise CheckpointError(f"{checkpoint.path} holds a {checkpoint.kind}, expected {expected_kind}")
    model = instantiate_model(checkpoint.kind, checkpoint.config, checkpoint.state_dict,
                              context=str(checkpoint.path))
    return model.eval()


def instantiate_model(kind: str, config: ConfigBase, state_dict: Mapping[str, Tensor],
                      context: str = "") -> nn.Module:
    """Build ``kind`` for ``config`` and load ``state_dict`` strictly (names and shapes checked
    first, every offending key named).

    The imported published architectures (inference only, every tensor persistent) are built on
    the meta device and materialised empty before the copy: randomly initialising 100 M
    parameters only to overwrite them costs seconds per load.
    """
    if type(config) in ARCHITECTURE_CONFIG_CLASSES.values():
        with torch.device("meta"):
            model = build_model(kind, config)
        check_state_dict(model, state_dict, context=context)
        model = model.to_empty(device="cpu")
    else:
        model = build_model(kind, config)
        check_state_dict(model, state_dict, context=context)
    model.load_state_dict(state_dict, strict=True)
    return model


# ----------------------------------------------------------------------------- ClimateGAN


@dataclass
class ConversionReport:
    state_dict: dict[str, Tensor]
    folded: int = 0  # spectral-norm weights folded into plain weights
    renamed: int = 0
    kept: int = 0  # copied under the same name
    dropped: list[str] = field(default_factory=list)  # source keys with no destination

    def summary(self) -> str:
        return (
            f"{len(self.state_dict)} tensors out: {self.folded} spectral-norm weights folded, "
            f"{self.renamed} renamed, {self.kept} kept, {len(self.dropped)} dropped"
        )


def _l2normalize(v: Tensor, eps: float = 1e-12) -> Tensor:
    return v / (v.norm() + eps)


def fold_spectral_weight(
    weight: Tensor, u: Tensor, v: Tensor | None, power_iterations: int = 1
) -> Tensor:
    """``W / sigma`` with sigma from ``power_iterations`` power iterations started at ``u``
    (ClimateGAN/SPADE ``SpectralNorm`` runs one per forward; 0 uses ``u`` and ``v`` as stored,
    like PyTorch's spectral norm in eval mode)."""
    matrix = weight.reshape(weight.shape[0], -1).double()
    u = u.double()
    v = v.double() if v is not None else _l2normalize(matrix.t() @ u)
    for _ in range(power_iterations):
        v = _l2normalize(matrix.t() @ u)
        u = _l2normalize(matrix @ v)
    sigma = torch.dot(u, matrix @ v)
    return (weight.double() / sigma).to(weight.dtype)


def convert_climategan_state_dict(
    source: Mapping[str, Any],
    key_map: Mapping[str, str] | Callable[[str], str | None] | None = None,
    *,
    power_iterations: int = 1,
) -> ConversionReport:
    """Fold spectral norm and rename the keys of a ClimateGAN state dict.

    ``source``: a state dict, or a ClimateGAN checkpoint dict (its ``"G"`` entry is used).
    Spectral-norm triples ``X.weight_bar, X.weight_u, X.weight_v`` become ``X.weight = W/sigma``
    (one power iteration from the stored ``u``, as the published forward does); PyTorch's
    ``X.weight_orig/_u/_v`` are folded with the stored vectors. ``key_map``: either prefix
    replacements (longest matching prefix wins; keys that match none are dropped) or a function
    returning the new name or None to drop. Without it, names are kept. A ``module.`` prefix is
    stripped first. Load the result into a model built with ``spectral_norm=False`` (or check it
    with ``generator.models.common.check_state_dict``).
    """
    state = source.get("G", source) if isinstance(source, Mapping) else source
    state = {str(k).removeprefix("module."): v for k, v in state.items()}
    report = ConversionReport(state_dict={})

    folded: dict[str, Tensor] = {}
    consumed: set[str] = set()
    for key in list(state):
        match = re.fullmatch(r"(.*)\.weight_(bar|orig)", key)
        if not match:
            continue
        prefix, flavour = match.groups()
        u_key, v_key = f"{prefix}.weight_u", f"{prefix}.weight_v"
        if u_key not in state:
            raise ValueError(f"{key} has no {u_key} to fold spectral norm with")
        iterations = power_iterations if flavour == "bar" else 0
        folded[f"{prefix}.weight"] = fold_spectral_weight(
            state[key], state[u_key], state.get(v_key), iterations
        )
        consumed.update({key, u_key, v_key})
        report.folded += 1
    plain = {k: v for k, v in state.items() if k not in consumed}
    plain.update(folded)

    for key in sorted(plain):
        new_key = _map_key(key, key_map)
        if new_key is None:
            report.dropped.append(key)
            continue
        if new_key in report.state_dict:
            raise ValueError(f"two source keys map to {new_key!r}")
        report.state_dict[new_key] = plain[key]
        if new_key == key:
            report.kept += 1
        else:
            report.renamed += 1
    return report


def _map_key(key: str, key_map: Mapping[str, str] | Callable[[str], str | None] | None) -> str | None:
    if key_map is None:
        return key
    if callable(key_map):
        return key_map(key)
    matches = [prefix for prefix in key_map if key.startswith(prefix)]
    if not matches:
        return None
    prefix = max(matches, key=len)
    return key_map[prefix] + key[len(prefix) :]
