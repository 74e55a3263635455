"""Simulated respondents for a demo study: they take the real study, page by page, through the views.

Each one enters with a panel id ``SIM-<n>``, consents, gives a postal code of a random forward
sortation area, answers every page at random (``survey.answers.answers_for`` with an RNG) and
finishes. The treatment page's display time is simulated (10–40 s are written as if they had
passed) so a few hundred respondents take a minute or two, not hours. Only demo studies accept
them: their answers are noise and must never mix with a real study's data.

Each page's time is simulated the same way (the page's last serve is moved back before it is
submitted): a person reads at about 200 words a minute and takes two seconds an item, give or take.
``plant`` mixes in low-quality respondents, whose panel id says what they are (``SIM-00012-speeder``):

* ``speeder``: every questionnaire page in 15-30 % of a normal time;
* ``straight_liner``: the same position on every scale item (the rest at random);
* ``duplicate``: an earlier respondent again under a new panel id: the same browser (cookie), the
  same address and user agent, or both;
* ``bot``: fills every field it finds (the hidden honeypot too), answers at random, and submits each
  page in under half a second.

Normal respondents pass the attention check and each come from their own address and browser.
Nobody is told or stopped for what they are: they all take the study to its end.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count
from django.test import Client
from django.utils import timezone

from studyserver.geo.models import FsaPlacement
from studyserver.instrument.definition import Page
from studyserver.studies.models import Study

from . import flow
from .answers import answers_for
from .models import Exposure, PageView, Participant
from .traces import HONEYPOT_FIELD

#: The kinds of low-quality respondents ``plant`` can mix in (see the module's docstring).
PLANTED_KINDS: tuple[str, ...] = ("speeder", "straight_liner", "duplicate", "bot")
_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Mobile Safari/537.36",
)


@dataclass
class _Browser:
    client: Client
    address: str
    user_agent: str


def _new_browser(rng: random.Random, address: str | None = None, user_agent: str | None = None) -> _Browser:
    # Public addresses (23.0.0.0/8), as real participants have: a private one is never hashed.
    address = address or f"23.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    user_agent = user_agent or rng.choice(_USER_AGENTS)
    return _Browser(Client(HTTP_HOST="localhost", REMOTE_ADDR=address, HTTP_USER_AGENT=user_agent), address, user_agent)


def _kinds(count: int, plant: Mapping[str, float], rng: random.Random) -> list[str]:
    """Each respondent's kind: the planted shares of ``count`` (rounded), the rest normal, shuffled."""
    kinds: list[str] = []
    for kind in PLANTED_KINDS:
        kinds += [kind] * round(count * float(plant.get(kind, 0.0)))
    if len(kinds) > count:
        raise SimulationError("the planted shares add up to more than every respondent")
    kinds += ["normal"] * (count - len(kinds))
    rng.shuffle(kinds)
    return kinds


class SimulationError(RuntimeError):
    """A simulated respondent met a page the simulation did not expect (the message says which)."""


def simulate_respondents(study: Study, count: int, seed: int = 0,
                         progress: Callable[[str], None] | None = None,
                         plant: Mapping[str, float] | None = None) -> dict[str, int]:
    """Run ``count`` respondents through ``study``; returns how many ended in each state.

    ``plant``: the share of respondents of each kind of :data:`PLANTED_KINDS` (e.g. ``{"bot": 0.05}``).
    """
    unknown = set(plant or {}) - set(PLANTED_KINDS)
    if unknown:
        raise SimulationError(f"unknown planted kind(s) {', '.join(sorted(unknown))}: use {', '.join(PLANTED_KINDS)}")
    if not study.demo:
        raise SimulationError(f"study {study.slug!r} is not a demo study: simulated respondents are refused")
    rng = random.Random(seed)
    placements = FsaPlacement.objects.filter(representation_order=study.representation_order)
    if study.scope == Study.Scope.PROVINCES:  # respondents from where the study recruits
        placements = placements.filter(province_code__in=study.scope_province_codes())
    fsas = list(placements.exclude(method=FsaPlacement.Method.UNPLACEABLE).values_list("fsa", flat=True))
    if not fsas:
        raise SimulationError(f"no districts of the {study.representation_order} order loaded (run seed_demo)")
    first = Participant.objects.filter(study=study, personal_data__panel_id__startswith="SIM-").count()
    kinds = _kinds(count, plant or {}, rng)
    earlier: list[_Browser] = []
    for number, kind in zip(range(first, first + count), kinds, strict=True):
        if kind == "duplicate" and earlier:
            browser = _same_person(rng.choice(earlier), number, rng)
        else:
            kind = "normal" if kind == "duplicate" else kind  # nobody earlier to repeat yet
            browser = _new_browser(rng)
            earlier.append(browser)
        suffix = "" if kind == "normal" else f"-{kind}"
        _take_study(study, f"SIM-{number:05d}{suffix}", rng.choice(fsas) + " 1A1", rng, kind, browser)
        if progress is not None and ((number - first + 1) % max(1, count // 10) == 0 or number == first + count - 1):
            progress(f"{number - first + 1}/{count} simulated respondents")
    simulated = Participant.objects.filter(study=study, personal_data__panel_id__startswith="SIM-")
    return dict(simulated.values_list("state").annotate(n=Count("pk")).order_by("state"))


def _same_person(before: _Browser, number: int, rng: random.Random) -> _Browser:
    """An earlier respondent's browser again: the same one (cookie, address, user agent), a private
    window on the same machine (address and user agent, no cookie), or the same browser elsewhere."""
    variant = number % 3
    if variant == 0:
        return before
    if variant == 1:
        return _new_browser(rng, before.address, before.user_agent)
    moved = _new_browser(rng, user_agent=before.user_agent)
    moved.client.cookies = before.client.cookies
    return moved


def _page_seconds(page: Page, language: str, kind: str, rng: random.Random) -> float:
    """How long a respondent of ``kind`` spends on ``page``."""
    if kind == "bot":
        return rng.uniform(0.05, 0.5)
    words = sum(len(text.split()) for text in [page.title.get(language), page.intro.get(language) if page.intro else "",
                                               *(item.text.get(language) for item in page.items)])
    seconds = (words * 60 / 200 + 2.0 * len(page.items)) * rng.lognormvariate(0, 0.3)
    return seconds * rng.uniform(0.15, 0.3) if kind == "speeder" else seconds


def _planted_answers(page: Page, participant: Participant, kind: str, rng: random.Random,
                     position: int) -> dict[str, Any]:
    """The page's answers for a respondent of ``kind`` (random ones; see the module's docstring)."""
    overrides: dict[str, Any] = {}
    for item in page.items:
        if kind == "straight_liner" and item.type == "scale":
            options = item.options_for(participant.province_code)
            overrides[item.code] = options[min(position, len(options) - 1)].code
        elif kind in {"normal", "speeder", "duplicate"} and item.attention_correct is not None:
            overrides[item.code] = item.attention_correct
    data = answers_for(page, participant.province_code, participant.answers(), overrides=overrides, rng=rng)
    if kind == "bot":
        data[HONEYPOT_FIELD] = "https://offers.example/"
    return data


def _served_earlier(participant: Participant, step: str, seconds: float) -> None:
    PageView.objects.filter(participant=participant, step=step).update(
        last_served_at=timezone.now() - timedelta(seconds=seconds))


def _take_study(study: Study, panel_id: str, postal_code: str, rng: random.Random, kind: str = "normal",
                browser: _Browser | None = None) -> None:
    client = (browser or _new_browser(rng)).client
    position = rng.randrange(4)  # a straight-liner's column (every scale has at least four options)
    language = "fr" if rng.random() < 0.25 else "en"
    entry = f"/s/{study.slug}/?{urlencode({study.panel_id_parameter: panel_id, 'lang': language})}"
    client.get(entry)  # the consent page: nothing is stored until the respondent agrees
    response = client.post(entry, {"decision": "agree", "adult": "on"})
    instrument = study.instrument
    for _ in range(40):
        location = response.get("Location", "")
        if response.status_code != 302 or not location.startswith("/take/"):
            return  # finished (panel redirect) or screened out
        if location.endswith("/screened-out/"):
            return
        token, step = location.strip("/").split("/")[1:3]
        participant = Participant.objects.get(token=token)
        client.get(location)
        if step == flow.CONSENT:
            data: dict[str, Any] = {"decision": "agree", "adult": "on"}
        elif step == flow.POSTAL:
            data = {"postal_code": postal_code}
        elif step == flow.DISTRICT:
            _, offered = flow.district_choices(participant)
            data = {"district": rng.choice(offered).fed_code}
        elif step == flow.TREATMENT:
            shown = rng.uniform(10, 40)
            served = participant.exposure.page_served_at - timedelta(seconds=shown)
            Exposure.objects.filter(participant=participant).update(
                page_served_at=served, image_loaded_at=served + timedelta(seconds=rng.uniform(0.1, 1.5)))
            data = {}
        elif step == flow.DEBRIEF:
            data = {}
        else:
            page = instrument.page(step)
            data = _planted_answers(page, participant, kind, rng, position)
            _served_earlier(participant, step, _page_seconds(page, participant.language, kind, rng))
        response = client.post(location, data)
        if response.status_code not in (200, 302):
            raise SimulationError(f"{panel_id}: {step} answered {response.status_code}")
    raise SimulationError(f"{panel_id} did not finish the study")
