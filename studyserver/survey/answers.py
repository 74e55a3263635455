"""Valid answers to any questionnaire page: typical ones for tests and the participant-flow
benchmark, random ones (``rng``) for the demo's simulated respondents."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from studyserver.instrument.definition import Item, Page


def answers_for(page: Page, province_code: str, earlier: Mapping[str, Any],
                overrides: Mapping[str, Any] | None = None, rng: random.Random | None = None) -> dict[str, Any]:
    """Valid POST data for one questionnaire page: the first option of every visible item, or
    with ``rng`` a random valid answer (the attention check passed nine times in ten)."""
    overrides = dict(overrides or {})
    data: dict[str, Any] = {}
    seen = dict(earlier)
    for item in page.items:
        if not item.visible({**seen, **data}, province_code):
            continue
        if item.code in overrides:
            value = overrides.pop(item.code)
        elif rng is not None:
            value = _random_answer(item, province_code, rng)
        else:
            value = _typical_answer(item, province_code)
        if value is not None:
            data[item.code] = value
    return data


def _typical_answer(item: Item, province_code: str) -> Any:
    if item.attention_correct is not None:
        return item.attention_correct
    if item.type == "integer":
        return 1980 if item.code == "birth_year" else item.min_value
    if item.type in {"choice", "scale", "yesno"}:
        return item.options_for(province_code)[0].code
    if item.type == "email":
        return "someone@example.org"
    if item.type == "text":
        return "Ann Example"
    return None  # an unticked checkbox




def _random_answer(item: Item, province_code: str, rng: random.Random) -> Any:
    if item.attention_correct is not None and rng.random() < 0.9:
        return item.attention_correct
    if item.type == "integer":
        low = item.min_value if item.min_value is not None else 0
        high = item.max_value if item.max_value is not None else low + 40
        if item.code == "birth_year":
            low, high = max(low, 1940), high
        return rng.randint(low, min(high, low + 60))
    if item.type in {"choice", "scale", "yesno"}:
        return rng.choice(item.options_for(province_code)).code
    if item.type == "checkbox":
        return True if rng.random() < 0.5 else None
    return _typical_answer(item, province_code)
