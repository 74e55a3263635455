"""What a generation request may ask for, without torch.

The web process validates and copies requests (``studyserver.treatments.services``) but never
runs a model, so these live apart from :mod:`generator.pipeline`: the web image installs no torch
(``pip install .``; the gpu worker installs ``.[gpu]``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EVENTS = ("flood", "smog", "wildfire")
OUTPUT_FORMATS = ("png", "jpeg")


@dataclass(frozen=True)
class FloodParams:
    """What to generate. ``size`` None: the backend's working size. ``seed`` picks the
    wildfire colour (the networks themselves are deterministic)."""

    event: str = "flood"
    threshold: float = 0.5
    size: int | None = None
    seed: int = 0
    format: str = "png"

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(f"event must be one of {EVENTS}, got {self.event!r}")
        if not 0.0 <= float(self.threshold) <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.format not in OUTPUT_FORMATS:
            raise ValueError(f"format must be one of {OUTPUT_FORMATS}, got {self.format!r}")
        if self.size is not None and int(self.size) <= 0:
            raise ValueError("size must be positive")

    @classmethod
    def from_value(cls, value: FloodParams | Mapping[str, Any] | None) -> FloodParams:
        """Accept a FloodParams, a plain mapping (unknown keys are refused) or None."""
        if value is None:
            return cls()
        if isinstance(value, FloodParams):
            return value
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown generation parameters {unknown}; expected some of {sorted(known)}")
        data = dict(value)
        if data.get("size") is not None:
            data["size"] = int(data["size"])
        if "seed" in data:
            data["seed"] = int(data["seed"] or 0)
        if "threshold" in data:
            data["threshold"] = float(data["threshold"])
        return cls(**data)


def content_key(source_bytes: bytes, backend: str, model_version: str, params: Mapping[str, Any],
                **more: Any) -> str:
    """The content key of a generated image (hex SHA-256): the source's bytes, the backend, the
    model version and the parameters (and ``more`` fields, e.g. a record version). The same
    request gives the same key anywhere, so a stored result is found without running a model:
    the generator's output cache and the platform's stored stimuli both name files by it."""
    digest = hashlib.sha256(hashlib.sha256(source_bytes).digest())
    digest.update(json.dumps({"backend": backend, "model_version": model_version,
                              "params": dict(params), **more}, sort_keys=True).encode())
    return digest.hexdigest()

