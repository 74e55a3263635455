"""Participants over HTTP, for the load and fault benchmarks and the live-server tests.

A :class:`RemoteParticipant` takes a study through a running server's real pages (requests, no
browser), as a patient person would: a page that says the study is briefly unavailable (503 with
``Retry-After``), a bare 5xx or a dropped connection is waited out and the same request sent again.
Everything it saw is counted, so a benchmark can report what participants went through.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import requests

# Territorial postal codes the reference data decides outright (no district page), and their ridings.
POSTAL_CODES = [("Y1A 6E5", "YT"), ("X1A 2N4", "NT"), ("X0A 0H0", "NU")]
TERRITORY_DISTRICTS = ["60001", "61001", "62001"]
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
IMAGE = re.compile(r'<img src="(/stimuli/[^"]+)"')


def seed_load_study(slug: str, min_exposure_seconds: int = 0) -> None:
    """Districts, approved images for the three territories, and an open study: what the load needs.

    Run inside Django (``manage.py shell -c``) against a fresh database.
    """
    from studyserver.geo.models import District
    from studyserver.geo.reference import load_reference_districts
    from studyserver.studies.models import Study
    from tests.support.treatments import approve_images_for

    load_reference_districts("2013")
    for code in TERRITORY_DISTRICTS:
        approve_images_for(District.objects.get(representation_order="2013", fed_code=code))
    Study.objects.create(slug=slug, title="Load", is_open=True, representation_order="2013",
                         min_exposure_seconds=min_exposure_seconds)


class Observations:
    """What every participant saw, shared by the threads of one run."""

    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.statuses: Counter[int] = Counter()
        self.connection_errors = 0
        self.unavailable_pages = 0  # 503s that carried Retry-After: the page meant for this case
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def timed(self, kind: str, seconds: float, status: int | None, count: bool = True) -> None:
        """One request's latency under ``kind``; ``count=False``: a second view of a request already counted."""
        with self._lock:
            self.latency[kind].append(seconds)
            if not count:
                return
            if status is None:
                self.connection_errors += 1
            else:
                self.statuses[status] += 1

    def saw_unavailable(self) -> None:
        with self._lock:
            self.unavailable_pages += 1

    def error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


@dataclass
class RemoteParticipant:
    base: str
    slug: str
    number: int
    observations: Observations
    patience_seconds: float = 120.0  # how long a page may stay unavailable before giving up
    language: str = "en"
    session: requests.Session = field(default_factory=requests.Session)
    accepted_steps: list[str] = field(default_factory=list)  # pages whose POST the server took (302)
    last_seconds: float = 0.0  # the latency of the last request answered

    @property
    def email(self) -> str:
        return f"participant-{self.number}@example.org"

    def request(self, kind: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one request, waiting out unavailability; the answer that was not 5xx."""
        deadline = time.monotonic() + self.patience_seconds
        while True:
            started = time.perf_counter()
            try:
                response = self.session.request(method, self.base + path, allow_redirects=False, timeout=60, **kwargs)
            except requests.ConnectionError:
                self.observations.timed(kind, time.perf_counter() - started, None)
                response = None
            else:
                self.last_seconds = time.perf_counter() - started
                self.observations.timed(kind, self.last_seconds, response.status_code)
                if response.status_code < 500:
                    return response
                if response.status_code == 503 and response.headers.get("Retry-After"):
                    self.observations.saw_unavailable()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{method} {path} still failing after {self.patience_seconds:.0f} s")
            wait = 1.0
            if response is not None and (response.headers.get("Retry-After") or "").isdigit():
                wait = min(float(response.headers["Retry-After"]), 5.0)
            time.sleep(wait)

    def take_study(self) -> bool:
        """From the entry link to the panel redirect; False (and an error noted) on anything unexpected."""
        from studyserver.instrument.definition import get_instrument
        from studyserver.survey.answers import answers_for

        instrument = get_instrument()
        postal_code, province = POSTAL_CODES[self.number % len(POSTAL_CODES)]
        answers: dict[str, Any] = {}
        try:
            entry = f"/s/{self.slug}/?pid=LOAD-{self.number}&lang={self.language}"
            response = self.request("entry", "GET", entry)
            if response.status_code == 200:  # the consent page: nothing is stored until they agree
                token = CSRF.search(response.text)
                if token is None:
                    self.observations.error(f"participant {self.number}: the entry page has no form")
                    return False
                response = self.request("page POST", "POST", entry, headers={"Referer": self.base + entry},
                                        data={"decision": "agree", "adult": "on",
                                              "csrfmiddlewaretoken": token.group(1)})
                if response.status_code == 302:
                    self.accepted_steps.append("consent")
            for _ in range(40):
                location = response.headers.get("Location", "")
                if response.status_code != 302 or not location:
                    self.observations.error(f"participant {self.number}: {response.status_code} at {response.url}")
                    return False
                if not location.startswith("/take/"):
                    return "/done/complete/" in location
                page = self.request("page GET", "GET", location)
                token = CSRF.search(page.text)
                if page.status_code == 302:
                    response = page  # the page moved on (a retried POST had been stored): follow it
                    continue
                if page.status_code != 200 or token is None:
                    self.observations.error(f"participant {self.number}: GET {location} answered {page.status_code}")
                    return False
                step = location.rstrip("/").rsplit("/", 1)[-1]
                self.observations.timed(f"GET {step}", self.last_seconds, 200, count=False)
                for image in IMAGE.findall(page.text):  # as a browser would (the server records the load)
                    self.request("image", "GET", image)
                if step == "consent":
                    data: dict[str, Any] = {"decision": "agree", "adult": "on"}
                elif step == "postal":
                    data = {"postal_code": postal_code}
                elif step in {"treatment", "debrief"}:
                    data = {}
                else:
                    data = answers_for(instrument.page(step), province, answers, overrides={"email": self.email})
                    answers.update(data)
                data["csrfmiddlewaretoken"] = token.group(1)
                response = self.request("page POST", "POST", location, data=data, headers={"Referer": self.base + location})
                if response.status_code == 302 and step != "debrief":
                    self.accepted_steps.append(step)
        except TimeoutError as error:
            self.observations.error(f"participant {self.number}: {error}")
        return False
