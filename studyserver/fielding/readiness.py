"""Is a study ready to open for its scope? One list of reasons, read by the admin, the command and tests.

Each :class:`Reason` has a level:

* ``blocker`` — opening is refused (a demo study may open anyway, with the reasons as warnings);
* ``confirm`` — opening needs an explicit confirmation (images made by the tiny test weights);
* ``warning`` — worth knowing, does not stop anything.

The coverage part reads ``treatments.services.material_coverage``, the same query the eligibility
check and the coverage board use, restricted to the districts of the study's scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Q

from studyserver.assignment.models import AllocationScheme
from studyserver.geo.models import District
from studyserver.geo.store import DEFAULT_REPRESENTATION_ORDER
from studyserver.instrument.versions import instrument_problems
from studyserver.studies.arms import CONTROL_ARM
from studyserver.studies.models import EXIT_KINDS, Study, exit_url_problems
from studyserver.treatments.models import DISTRICT_KINDS, Kind, Stimulus
from studyserver.treatments.services import material_coverage
from studyserver.treatments.weights import TEST_WEIGHT_BACKENDS, generator_uses_test_weights

BLOCKER, CONFIRM, WARNING = "blocker", "confirm", "warning"
_EXAMPLES = 5


@dataclass(frozen=True)
class Reason:
    code: str
    level: str
    message: str


def scheme_for(study: Study) -> Any:
    """The study's allocation scheme, or the unsaved default it would get (nothing is created here)."""
    if study.pk is not None:
        scheme = AllocationScheme.objects.filter(study_id=study.pk).first()
        if scheme is not None:
            return scheme
    # Not bound to the study: that would cache the unsaved scheme as study.allocation_scheme.
    return AllocationScheme()


def readiness(study: Study) -> list[Reason]:
    """Everything that stands between ``study`` and fielding it, most serious first."""
    reasons = [*_scope_reasons(study), *_allocation_reasons(study), *_exit_reasons(study),
               *_questionnaire_reasons(study), *_letter_order_reasons(study), *_entry_reasons(study),
               *_exclusion_reasons(study)]
    reasons += _demo_mode_reasons(study)
    districts = list(study.districts_in_scope()) if study.representation_order else []
    if districts:
        reasons += _coverage_reasons(study, districts)
        reasons += _weights_reasons(study, districts)
    order = {BLOCKER: 0, CONFIRM: 1, WARNING: 2}
    return sorted(reasons, key=lambda reason: order[reason.level])


def blockers(reasons: list[Reason]) -> list[Reason]:
    return [reason for reason in reasons if reason.level == BLOCKER]


def confirmations(reasons: list[Reason]) -> list[Reason]:
    return [reason for reason in reasons if reason.level == CONFIRM]


def _scope_reasons(study: Study) -> list[Reason]:
    loaded = District.objects.filter(representation_order=study.representation_order).count()
    if not loaded:
        return [Reason("no_districts", BLOCKER, f"No districts of the {study.representation_order} representation "
                       "order are loaded: run manage.py load_districts (README, 'Districts for a real study').")]
    in_scope = study.districts_in_scope().count()
    if not in_scope:
        return [Reason("empty_scope", BLOCKER, f"The scope ({study.scope_summary()}) contains no loaded district.")]
    if study.scope == Study.Scope.DISTRICTS and in_scope < len(study.scope_fed_codes()):
        known = set(study.districts_in_scope().values_list("fed_code", flat=True))
        unknown = [code for code in study.scope_fed_codes() if code not in known]
        return [Reason("unknown_districts", BLOCKER, f"Listed districts not loaded: {', '.join(unknown)}.")]
    return []


def _questionnaire_reasons(study: Study) -> list[Reason]:
    """A real study may not show participants the sample questionnaire's placeholder contacts."""
    return [Reason("placeholder_contacts", BLOCKER, problem)
            for problem in instrument_problems(study.instrument, demo=study.demo)]


def _letter_order_reasons(study: Study) -> list[Reason]:
    """Letters to MPs of an order that is no longer in force reach ridings that no longer exist."""
    if study.representation_order == DEFAULT_REPRESENTATION_ORDER:
        return []
    if not any(page.shows_letter for page in study.instrument.pages):
        return []
    return [Reason("letters_to_old_ridings", WARNING,
                   f"This study is on the {study.representation_order} representation order and its questionnaire "
                   "offers a letter to the participant's MP: those letters would be addressed to "
                   f"{study.representation_order} ridings, which no longer exist since the April 2025 election "
                   f"(the 45th Parliament sits on the {DEFAULT_REPRESENTATION_ORDER} order). Field it on "
                   f"{DEFAULT_REPRESENTATION_ORDER}, or take the letter page out of its questionnaire.")]


def _exclusion_reasons(study: Study) -> list[Reason]:
    """Opening freezes the exclusion rule: say what it will be, and when it excludes nobody."""
    if study.exclusion_frozen_at is not None:
        return []
    if not study.exclusion_rule:
        return [Reason("no_exclusions", WARNING, "The pre-registered exclusions tick no respondent-quality flag: "
                       "nobody will be excluded. Opening freezes this choice.")]
    return [Reason("exclusions", WARNING, f"Opening freezes the pre-registered exclusions: "
                   f"{', '.join(study.exclusion_rule)}.")]


def _allocation_reasons(study: Study) -> list[Reason]:
    scheme = scheme_for(study)
    reasons = []
    if len(scheme.arms) < 2:
        reasons.append(Reason("one_arm", BLOCKER, "The allocation scheme has fewer than two arms with a ratio above 0."))
    if scheme.strata == scheme.Strata.ITEM:

        pre_items = {item.code for page in study.instrument.pages_in_phase("pre") for item in page.items}
        if scheme.strata_item not in pre_items:
            reasons.append(Reason("bad_strata_item", BLOCKER, f"Strata item {scheme.strata_item!r} is not a "
                                  "pre-treatment question of the instrument."))
    return reasons


def _entry_reasons(study: Study) -> list[Reason]:
    """Unsigned entry links: recommended against for a real study (README: what an unsigned id exposes)."""
    if study.demo or study.require_signed_entry:
        return []
    return [Reason("unsigned_entry", WARNING,
                   "Entry links are not signed: whoever learns or guesses a panel id can continue that "
                   "participant's study from another browser (after a page showing nothing stored) and "
                   "then see their current page (its district, ridings or MP). If the panel can sign its "
                   "redirect with HMAC-SHA256, or you send the links yourself (signed_entry_links), tick "
                   "Require signed entry.")]


def _demo_mode_reasons(study: Study) -> list[Reason]:
    """A server in demo mode lets anyone in without the panel's id: fine for the demo, not a study."""
    if study.demo or not settings.FLOODLIGHT_DEMO_MODE:
        return []
    return [Reason("demo_mode_server", WARNING,
                   "This server accepts entries without a panel id (demo mode, FLOODLIGHT_DEMO_MODE): a link "
                   f"without {study.panel_id_parameter}=… enters this study too, and that participant cannot be "
                   "matched to the panel (or paid). Set FLOODLIGHT_DEMO_MODE=0 on the server that fields it.")]


def _exit_reasons(study: Study) -> list[Reason]:
    reasons = []
    allowed = {"pid", *study.kept_parameters()}
    for kind in EXIT_KINDS:
        template = study.exit_template(kind)
        own = bool(getattr(study, f"{kind}_url_template"))
        for problem in exit_url_problems(template, allowed, allow_local=not own):
            source = "the study's" if own else f"PANEL_{kind.upper()}_URL"
            reasons.append(Reason(f"exit_{kind}", BLOCKER, f"{kind} exit URL ({source}): {problem}"))
        if not own and template.startswith("/") and not study.demo:
            reasons.append(Reason(f"exit_{kind}_standin", BLOCKER,
                                  f"The {kind} exit is the built-in stand-in page ({template}): set the study's "
                                  f"{kind} URL or PANEL_{kind.upper()}_URL to the panel's address."))
    return reasons


def _coverage_reasons(study: Study, districts: list[Any]) -> list[Reason]:
    arms = [arm for arm in scheme_for(study).arms if arm != CONTROL_ARM]
    coverage = material_coverage(districts, include_demo=study.demo)
    missing: dict[str, list[Any]] = {arm: [] for arm in arms}
    for district in districts:
        for arm in arms:
            if coverage[district.pk][arm] != "approved":
                missing[arm].append(district)
    lacking = {district.pk for found in missing.values() for district in found}
    if not lacking:
        return []
    per_arm = "; ".join(_missing_slots(arm, found) for arm, found in missing.items() if found)
    examples = [d for d in districts if d.pk in lacking][:_EXAMPLES]
    named = "; ".join(f"{d.fed_code} {d.name_en}" for d in examples)
    more = f" and {len(lacking) - len(examples)} more" if len(lacking) > len(examples) else ""
    return [Reason("images_missing", BLOCKER,
                   f"Approved images are missing for {len(lacking)} of the {len(districts)} districts in scope "
                   f"(by arm: {per_arm}), e.g. {named}{more}. Participants from them would be screened out: "
                   "generate and approve images (coverage board), or narrow the scope.")]


def _missing_slots(arm: str, districts: list[Any]) -> str:
    """What an arm lacks, counted in its own slots: a district's photo per district, the provincial
    landmark per province, the one distant photo once (not "distant 343" as if per district)."""
    if arm in DISTRICT_KINDS:
        return f"{arm}: {len(districts)} district{'' if len(districts) == 1 else 's'}"
    if arm == Kind.PROVINCIAL_LANDMARK:
        provinces = sorted({district.province_code for district in districts})
        return f"{arm}: {len(provinces)} province{'' if len(provinces) == 1 else 's'} ({', '.join(provinces)})"
    return f"{arm}: the one photo every district shares"


def _weights_reasons(study: Study, districts: list[Any]) -> list[Reason]:
    if study.demo:
        return []
    slots = Q(source__kind__in=DISTRICT_KINDS, source__district__in=districts)
    slots |= Q(source__kind=Kind.PROVINCIAL_LANDMARK, source__province_code__in={d.province_code for d in districts})
    test_made = Stimulus.objects.filter(slots, status=Stimulus.Status.APPROVED, source__is_demo=False,
                                        backend__in=TEST_WEIGHT_BACKENDS).count()
    reasons = []
    if test_made:
        reasons.append(Reason("test_weights", CONFIRM,
                              f"{test_made} approved image(s) in scope were made by the generator's tiny test "
                              "weights (backend reference-sim-tiny), not trained ones: configure "
                              "GENERATOR_MASKER_CHECKPOINT / GENERATOR_PAINTER_CHECKPOINT and regenerate, or "
                              "confirm that these images are meant to be shown."))
    elif generator_uses_test_weights():
        reasons.append(Reason("test_weights_configured", WARNING,
                              "No trained weights are configured: images generated from now on will use the "
                              "tiny test weights."))
    return reasons
