"""A ClimateGAN release-shaped folder with random values, for the tests (no download).

``climategan_release_keys.tsv`` lists every tensor name, shape and dtype of the two
``latest_ckpt.pth`` files of ``release-github-v1.zip``; :func:`write_release` writes
``<root>/masker`` and ``<root>/painter`` (``opts.yaml`` + ``checkpoints/latest_ckpt.pth``) with
seeded random values scaled so that activations stay finite and mask logits stay O(1), and
:func:`imported_release` also imports them (``<root>/imported/masker.pt``, ``painter.pt``), and
:func:`shared_imported_release` does it once per content key under a folder shared by every
pytest worker (the weights are ~430 MB: the release's real shapes are what the importer checks).
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml

KEYS_TSV = Path(__file__).parent / "climategan_release_keys.tsv"

# The release's opts.yaml, reduced to what the architecture depends on (the trainer's defaults
# with the mask decoder's SPADE conditioning on).
RELEASE_OPTS: dict[str, Any] = {
    "tasks": ["d", "s", "m", "p"],
    "data": {
        "normalization": "default",
        "transforms": [
            {"name": "hflip", "ignore": "val", "p": 0.5},
            {"name": "resize", "ignore": False, "new_size": {"default": 640, "d": 160, "s": 160}},
        ],
    },
    "gen": {
        "encoder": {"architecture": "deeplabv3"},
        "deeplabv3": {"backbone": "resnet", "output_stride": 8},
        "d": {"architecture": "dada", "upsample_featuremaps": True, "classify": {"enable": False}},
        "s": {"architecture": "deeplabv3", "output_dim": 11, "use_dada": True},
        "m": {
            "use_spade": True, "use_dada": False, "use_proj": True, "proj_dim": 64, "output_dim": 1,
            "spade": {"latent_dim": 128, "cond_nc": 15, "spade_use_spectral_norm": True,
                      "spade_param_free_norm": "batch", "num_layers": 3,
                      "activations": {"all_lrelu": True}},
        },
        "p": {"latent_dim": 640, "no_z": True, "spade_n_up": 7, "spade_use_spectral_norm": True,
              "spade_param_free_norm": "instance", "use_final_shortcut": False},
    },
}


def release_keys() -> dict[str, dict[str, tuple[int, ...]]]:
    """{"masker" | "painter": {key: shape}} from the published key list."""
    keys: dict[str, dict[str, tuple[int, ...]]] = {"masker": {}, "painter": {}}
    for line in KEYS_TSV.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        kind, key, shape, _dtype = line.split("\t")
        keys[kind][key] = () if shape == "scalar" else tuple(int(s) for s in shape.split("x"))
    return keys


def random_tensor(key: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    if key.endswith("num_batches_tracked"):
        return torch.tensor(1000, dtype=torch.long)
    if key.endswith("running_var"):
        return 0.5 + torch.rand(shape, generator=generator)
    if key.endswith("running_mean"):
        return 0.1 * torch.randn(shape, generator=generator)
    if key.endswith(("weight_u", "weight_v")):
        v = torch.randn(shape, generator=generator)
        return v / v.norm()
    if len(shape) == 1 and key.endswith("weight"):  # BatchNorm scale
        return 0.5 + 0.5 * torch.rand(shape, generator=generator)
    if len(shape) == 1:  # biases
        return 0.1 * torch.randn(shape, generator=generator)
    fan_in = max(1, int(torch.tensor(shape[1:]).prod()))
    return torch.randn(shape, generator=generator) / fan_in**0.5


def release_state(kind: str, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {k: random_tensor(k, s, generator) for k, s in release_keys()[kind].items()}


def write_part(folder: Path, state: dict[str, torch.Tensor], opts: dict[str, Any] | None = None) -> Path:
    """``folder/opts.yaml`` and ``folder/checkpoints/latest_ckpt.pth``; returns the .pth path."""
    (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    (folder / "opts.yaml").write_text(yaml.safe_dump(copy.deepcopy(opts or RELEASE_OPTS)))
    path = folder / "checkpoints" / "latest_ckpt.pth"
    torch.save({"G": state, "epoch": 300, "step": 123456}, path)
    return path


def write_release(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """(masker folder, painter folder) of a random release-shaped ClimateGAN release."""
    masker, painter = root / "masker", root / "painter"
    write_part(masker, release_state("masker", seed))
    write_part(painter, release_state("painter", seed + 1))
    return masker, painter


def imported_release(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write a random release under ``root`` and import it; (masker.pt, painter.pt)."""
    from generator.climategan import import_release

    masker, painter = write_release(root, seed)
    report = import_release(masker, painter, root / "imported")
    return report.outputs["masker"], report.outputs["painter"]


def release_content_key(seed: int = 0) -> str:
    """What the imported files depend on: the key list, the options, the seed and the generator's code."""
    digest = hashlib.sha256(json.dumps([RELEASE_OPTS, seed]).encode())
    digest.update(KEYS_TSV.read_bytes())
    digest.update(Path(__file__).read_bytes())
    for path in sorted((Path(__file__).resolve().parents[2] / "generator").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def shared_imported_release(cache_root: Path, seed: int = 0) -> tuple[Path, Path]:
    """(masker.pt, painter.pt) imported once under ``cache_root/climategan-<content key>``.

    Workers of one run (or runs sharing ``cache_root``) take a file lock: the first builds, the
    others reuse its files. The random release itself is deleted once imported (only the two
    imported files are needed), so one copy of the weights is on disk.
    """
    folder = Path(cache_root) / f"climategan-{release_content_key(seed)}"
    outputs = folder / "imported" / "masker.pt", folder / "imported" / "painter.pt"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "complete").exists():
            shutil.rmtree(folder, ignore_errors=True)
            imported_release(folder, seed)
            shutil.rmtree(folder / "masker")
            shutil.rmtree(folder / "painter")
            (folder / "complete").touch()
    return outputs
