"""The geocoding the survey flow uses (geo is a layer below it: ARCHITECTURE.md).

``locate`` turns a typed postal code into a Location: normalized code, FSA, province, centroid,
the candidate districts precomputed at load time, and the district decided without asking (only
when the data make it certain). Lookup order: the full postal code (addresses, ``address``) →
the FSA's polygon (``fsa_area``) → the FSA's centroid (``fsa_centroid``); at most two indexed
queries. Area and address shares are stored, so a study's own thresholds decide at lookup time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db.models import JSONField, OuterRef, QuerySet, Subquery

from . import postal
from .addresses import DEFAULT_POSTAL_CODE_THRESHOLD
from .areas import DEFAULT_AREA_THRESHOLD, decide_by_area, offered, stored_shares
from .models import District, FsaPlacement, PostalCodePlacement

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    fed_code: str
    name_en: str
    name_fr: str
    score: float
    district_id: int

    def name(self, language: str) -> str:
        return self.name_fr if language == "fr" else self.name_en


@dataclass(frozen=True)
class Location:
    input: str
    normalized: str | None
    valid: bool  # False: the participant gets a message (postal_error_message(error)) and another try
    error: str | None
    fsa: str | None
    province_code: str | None
    lat: float | None
    lon: float | None
    candidates: list[Candidate] = field(default_factory=list)
    decided_fed_code: str | None = None  # None: the participant is asked
    snapped: bool = False  # decided from a centroid in water snapped to the nearest district
    placeable: bool = False  # False with valid=True: not placeable in Canada → screen-out
    # address | fsa_area | fsa_centroid | sole_district (a territory) | unplaceable; None for an error
    method: str | None = None
    source: str | None = None  # the file the placement was computed from

    def to_json_dict(self) -> dict[str, Any]:
        """Exactly the object `locate_postal_code --json` prints (stable field names)."""
        return {
            "input": self.input,
            "normalized": self.normalized,
            "valid": self.valid,
            "error": self.error,
            "fsa": self.fsa,
            "province_code": self.province_code,
            "lat": self.lat,
            "lon": self.lon,
            "candidates": [
                {"fed_code": c.fed_code, "name_en": c.name_en, "name_fr": c.name_fr, "score": c.score}
                for c in self.candidates
            ],
            "decided_fed_code": self.decided_fed_code,
            "method": self.method,
            "source": self.source,
        }


# FsaPlacement.method → the method reported by locate.
FSA_METHODS = {
    FsaPlacement.Method.AREA: "fsa_area",
    FsaPlacement.Method.AREA_SPLIT: "fsa_area",
    FsaPlacement.Method.SOLE_DISTRICT: "sole_district",
    FsaPlacement.Method.UNPLACEABLE: "unplaceable",
}


def _candidates(rows: list[dict]) -> list[Candidate]:
    return [Candidate(c["fed_code"], c["name_en"], c["name_fr"], c["score"], c["district_id"]) for c in rows]


def _decide(rows: list[dict], threshold: float, min_share: float) -> tuple[str | None, list[dict]]:
    decided, kept = offered([(c["fed_code"], c["score"]) for c in rows], threshold, min_share=min_share)
    codes = {code for code, _share in kept}
    return decided, [c for c in rows if c["fed_code"] in codes]


def _decide_by_area(rows: list[dict], threshold: float) -> tuple[str | None, list[dict]]:
    """An FSA polygon's stored candidates decided at the study's threshold, most people first."""
    decided, kept = decide_by_area(stored_shares(rows), threshold)
    by_code = {c["fed_code"]: c for c in rows}
    return decided, [by_code[s.fed_code] for s in kept]


@dataclass(frozen=True)
class _Row:
    province_code: str
    lat: float | None
    lon: float | None
    decided_fed_code: str
    snapped: bool
    placeable: bool
    candidates: list[dict]
    method: str
    source: str
    address_candidates: list[dict] | None
    address_source: str | None


def _fetch_placement(order: str, fsa: str, postal_code: str) -> _Row | None:
    """The FSA's placement and the full code's address placement, in one query."""
    addressed = PostalCodePlacement.objects.filter(representation_order=OuterRef("representation_order"),
                                                   postal_code=postal_code)
    rows = (FsaPlacement.objects.filter(representation_order=order, fsa=fsa)
            .annotate(address_candidates=Subquery(addressed.values("candidates")[:1], output_field=JSONField()),
                      address_source=Subquery(addressed.values("source")[:1]))
            .values_list("province_code", "lat", "lon", "decided_fed_code", "snapped", "placeable", "candidates",
                         "method", "source", "address_candidates", "address_source")[:1])
    row = next(iter(rows), None)
    return None if row is None else _Row(*row)


def locate(
    raw: str,
    representation_order: str,
    *,
    fsa_area_threshold: float = DEFAULT_AREA_THRESHOLD,
    postal_code_threshold: float = DEFAULT_POSTAL_CODE_THRESHOLD,
) -> Location:
    """Locate a typed postal code in the districts of one representation order.

    The thresholds are the study's (``Study.fsa_area_threshold``, ``Study.postal_code_threshold``).
    """
    order = str(representation_order)
    check = postal.normalize_postal_code(raw)
    if check.error == postal.NOT_CANADIAN:
        # Understood, but not Canadian: no retry, the flow screens the participant out.
        return Location(check.input, None, True, check.error, None, None, None, None, placeable=False)
    if check.error:
        return Location(check.input, None, False, check.error, None, None, None, None)
    postal_code = check.normalized.replace(" ", "")
    placement = _fetch_placement(order, check.fsa, postal_code)
    if placement is None:
        # An FSA newer than the centroid and boundary files can still be known from its addresses.
        address = PostalCodePlacement.objects.filter(representation_order=order, postal_code=postal_code).only(
            "candidates", "source").first()
        if address is not None and address.candidates:
            decided, rows = _decide(address.candidates, postal_code_threshold, min_share=0.0)
            province = postal.PROVINCE_BY_SGC_CODE.get(rows[0]["fed_code"][:2])
            return Location(check.input, check.normalized, True, None, check.fsa, province, None, None,
                            candidates=_candidates(rows), decided_fed_code=decided, placeable=True,
                            method="address", source=address.source)
        if not FsaPlacement.objects.filter(representation_order=order).exists():
            logger.error("no FSA placements for representation order %s: run load_districts", order)
        return Location(check.input, check.normalized, False, postal.UNKNOWN_FSA, check.fsa, None, None, None)
    if not placement.placeable:
        return Location(check.input, check.normalized, True, postal.UNPLACEABLE, check.fsa,
                        placement.province_code, placement.lat, placement.lon, placeable=False,
                        method="unplaceable", source=placement.source)
    common = {"input": check.input, "normalized": check.normalized, "valid": True, "error": None, "fsa": check.fsa,
              "province_code": placement.province_code, "lat": placement.lat, "lon": placement.lon, "placeable": True}
    if placement.address_candidates:
        # Every district holding some of the code's addresses is offered: they are real, not noise.
        decided, rows = _decide(placement.address_candidates, postal_code_threshold, min_share=0.0)
        return Location(**common, candidates=_candidates(rows), decided_fed_code=decided, method="address",
                        source=placement.address_source)
    if placement.method in (FsaPlacement.Method.AREA, FsaPlacement.Method.AREA_SPLIT):
        decided, rows = _decide_by_area(placement.candidates, fsa_area_threshold)
        return Location(**common, candidates=_candidates(rows), decided_fed_code=decided, method="fsa_area",
                        source=placement.source)
    return Location(
        **common,
        candidates=_candidates(placement.candidates),
        decided_fed_code=placement.decided_fed_code or None,
        snapped=placement.snapped,
        method=FSA_METHODS.get(placement.method, "fsa_centroid"),
        source=placement.source,
    )


def postal_error_message(error: str, language: str) -> str:
    """The participant-facing message (English or French) for an error code of ``locate``."""
    return postal.error_message(error, language)


def districts_in_province(province_code: str, representation_order: str) -> QuerySet[District]:
    """The districts of a province, for the "none of these" choice; ordered by name in the flow's language."""
    return District.objects.filter(
        representation_order=str(representation_order), province_code=(province_code or "").upper()
    ).order_by("name_en")


def province_name(province_code: str, language: str) -> str:
    names = postal.PROVINCE_NAMES.get((province_code or "").upper())
    if names is None:
        return province_code or ""
    return names["fr" if language.lower().startswith("fr") else "en"]
