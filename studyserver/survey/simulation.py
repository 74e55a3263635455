"""Simulated respondents for a demo study: they take the real study, page by page, through the views.

Each one enters with a panel id ``SIM-<n>``, consents, gives a postal code of a random forward
sortation area, answers every page at random (``survey.answers.answers_for`` with an RNG) and
finishes. The treatment page's display time is simulated (10–40 s are written as if they had
passed) so a few hundred respondents take a minute or two, not hours. Only demo studies accept
them: their answers are noise and must never mix with a real study's data.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count
from django.test import Client

from studyserver.studies.models import Study

from . import flow
from .answers import answers_for
from .models import Exposure, Participant


class SimulationError(RuntimeError):
    """A simulated respondent met a page the simulation did not expect (the message says which)."""


def simulate_respondents(study: Study, count: int, seed: int = 0,
                         progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """Run ``count`` respondents through ``study``; returns how many ended in each state."""
    if not study.demo:
        raise SimulationError(f"study {study.slug!r} is not a demo study: simulated respondents are refused")
    from studyserver.geo.models import FsaPlacement

    rng = random.Random(seed)
    fsas = list(FsaPlacement.objects.filter(representation_order=study.representation_order)
                .exclude(method=FsaPlacement.Method.UNPLACEABLE).values_list("fsa", flat=True))
    if not fsas:
        raise SimulationError(f"no districts of the {study.representation_order} order loaded (run seed_demo)")
    first = Participant.objects.filter(study=study, personal_data__panel_id__startswith="SIM-").count()
    for number in range(first, first + count):
        _take_study(study, f"SIM-{number:05d}", rng.choice(fsas) + " 1A1", rng)
        if progress is not None and ((number - first + 1) % max(1, count // 10) == 0 or number == first + count - 1):
            progress(f"{number - first + 1}/{count} simulated respondents")
    simulated = Participant.objects.filter(study=study, personal_data__panel_id__startswith="SIM-")
    return dict(simulated.values_list("state").annotate(n=Count("pk")).order_by("state"))


def _take_study(study: Study, panel_id: str, postal_code: str, rng: random.Random) -> None:
    client = Client(HTTP_HOST="localhost")
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
            data = answers_for(page, participant.province_code, participant.answers(), rng=rng)
        response = client.post(location, data)
        if response.status_code not in (200, 302):
            raise SimulationError(f"{panel_id}: {step} answered {response.status_code}")
    raise SimulationError(f"{panel_id} did not finish the study")
