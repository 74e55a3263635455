"""Delivering a study's signed letters: one PDF per member (a letter a page) and a CSV manifest.

Only letters that were signed (box ticked and a name typed) by participants who did not withdraw.
The letter text is the one recorded when the participant submitted its page (:class:`AddressedLetter`);
letters signed before that record existed are rebuilt from the instrument, addressed to the riding.
The export holds personal data (typed names): it needs ``survey.export_personal_data`` and is
logged in the export log like any personal-data export.
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.db.models import QuerySet
from django.utils import formats, timezone, translation
from django.utils.text import slugify

from studyserver.accounts.permissions import check_personal_data_permission
from studyserver.core.times import file_stamp
from studyserver.exports.access import log_export
from studyserver.instrument.definition import Instrument, get_instrument
from studyserver.survey.models import PageSubmission, Participant

from .addressing import compose, current_representative, letter_text, riding_name
from .models import Representative

Progress = Callable[[str], None]
LOG_FORMAT = "letters"
MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ["file", "fed_code", "riding", "member", "honorific", "party", "email", "letters", "note"]
# DejaVu (free licence) ships inside matplotlib, a pinned dependency: French accents, œ, dashes and
# most Latin, Greek and Cyrillic names render on any machine without system fonts.
FONT_FILES = {"": "DejaVuSerif.ttf", "B": "DejaVuSerif-Bold.ttf"}
DATE_FORMATS = {"en": "F j, Y", "fr": "j F Y"}
# fpdf2 subsets fonts with fontTools, which logs every glyph at INFO: noise in commands and logs.
logging.getLogger("fontTools").setLevel(logging.WARNING)


class DeliveryError(RuntimeError):
    """The export cannot be written where asked (the message says why; nothing was written)."""


@dataclass(frozen=True)
class SignedLetter:
    participant_id: str
    signer: str
    language: str
    opening: str
    paragraphs: list[str]
    riding: str  # in the letter's language
    signed_at: datetime
    recorded_member: Representative | None
    signed_line: str  # "Signed on …, a constituent of …", in the signer's questionnaire version


@dataclass
class Bundle:
    """The letters going to one member (or to one riding without a known member): one PDF."""

    district: Any
    member: Representative | None
    letters: list[SignedLetter] = field(default_factory=list)
    filename: str = ""

    def note(self) -> str:
        notes = []
        if self.member is None:
            notes.append("seat vacant or no roster loaded: address the letters to the riding's member")
        elif not self.member.is_current:
            holder = current_representative(self.district)
            now = f"; the seat is now held by {holder.full_name}" if holder else "; the seat is now vacant"
            notes.append(f"no longer the member (replaced {timezone.localdate(self.member.replaced_at):%Y-%m-%d})"
                         f"{now}")
        unnamed = sum(1 for letter in self.letters if letter.recorded_member is None)
        if self.member is not None and unnamed:
            notes.append(f"{unnamed} letter(s) signed while the seat was vacant or unloaded (addressed to the riding)")
        blank = sum(1 for letter in self.letters if missing_glyphs(letter.signer))
        if blank:
            notes.append(f"{blank} signer name(s) use characters the PDF font lacks (left blank): "
                         "check the PDF before sending")
        return "; ".join(notes)


@dataclass
class Delivery:
    study: Any
    bundles: list[Bundle]

    @property
    def letter_count(self) -> int:
        return sum(len(bundle.letters) for bundle in self.bundles)


def signed_submissions(study: Any, instrument: Instrument | None = None) -> QuerySet[PageSubmission]:
    instrument = instrument or get_instrument()
    signature = instrument.signature_item  # the box that signs (``role: signature``), on the letter page
    if signature is None:
        return PageSubmission.objects.none()
    return (PageSubmission.objects
            .filter(participant__study=study, step=signature.page, **{f"answers__{signature.code}": 1})
            .exclude(participant__state=Participant.State.WITHDRAWN)
            .exclude(participant__personal_data__signature_name__regex=r"^\s*$")
            .filter(participant__personal_data__isnull=False)
            .select_related("participant__district", "participant__personal_data",
                            "participant__addressed_letter__representative__district",
                            "participant__addressed_letter__district")
            .order_by("submitted_at", "pk"))


def collect(study: Any, progress: Progress | None = None) -> Delivery:
    """The study's signed letters grouped by the member they go to, in a stable order."""
    instrument = study.instrument
    bundles: dict[tuple[int, int | None], Bundle] = {}
    current_cache: dict[int, Representative | None] = {}
    unplaced: list[str] = []
    for submission in signed_submissions(study, instrument):
        participant = submission.participant
        recorded = getattr(participant, "addressed_letter", None)
        if recorded is None:
            # Signed before letters were recorded: they saw the riding's wording, in their language.
            recorded = compose(participant, participant.language, None, participant.instrument)
        district = recorded.district or participant.district
        if district is None:
            # Not reachable through the flow (the letter comes after placement): said, not hidden.
            unplaced.append(str(participant.pk))
            continue
        member = recorded.representative
        if member is None:
            if district.pk not in current_cache:
                current_cache[district.pk] = current_representative(district)
            member = current_cache[district.pk]
        key = (district.pk, member.pk if member else None)
        bundle = bundles.setdefault(key, Bundle(district=district, member=member))
        bundle.letters.append(SignedLetter(
            participant_id=str(participant.pk), signer=participant.personal_data.signature_name.strip(),
            language=recorded.language, opening=recorded.opening, paragraphs=recorded.paragraphs,
            riding=riding_name(district, recorded.language), signed_at=submission.submitted_at,
            recorded_member=recorded.representative,
            signed_line=letter_text(
                participant.instrument, "letter_signed_line", recorded.language,
                date=_signed_date(submission.submitted_at, recorded.language),
                mp_district=riding_name(district, recorded.language)),
        ))
    ordered = sorted(bundles.values(), key=lambda b: (b.district.fed_code, b.member is None or not b.member.is_current,
                                                      b.member.full_name if b.member else ""))
    used: set[str] = set()
    for bundle in ordered:
        stem = f"{bundle.district.fed_code}-{slugify(bundle.member.full_name) if bundle.member else 'riding'}"
        name, n = f"{stem}.pdf", 1
        while name in used:
            n += 1
            name = f"{stem}-{n}.pdf"
        used.add(name)
        bundle.filename = name
    if progress is not None:
        progress(f"{sum(len(b.letters) for b in ordered)} signed letters to {len(ordered)} members or ridings")
        if unplaced:
            progress(f"WARNING: {len(unplaced)} signed letter(s) left out, their participants have no district: "
                     + ", ".join(unplaced))
    return Delivery(study=study, bundles=ordered)


# --- files -------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def font_paths() -> dict[str, Path]:
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return {style: folder / name for style, name in FONT_FILES.items()}


@lru_cache(maxsize=1)
def _printable() -> frozenset[int]:
    from fontTools.ttLib import TTFont

    maps = [TTFont(str(path)).getBestCmap() for path in font_paths().values()]
    return frozenset.intersection(*(frozenset(cmap) for cmap in maps))


def missing_glyphs(text: str) -> set[str]:
    """Characters of ``text`` the PDF font cannot draw (e.g. Chinese: DejaVu has no CJK)."""
    return {char for char in text if not char.isspace() and ord(char) not in _printable()}


def _signed_date(moment: datetime, language: str) -> str:
    with translation.override(language):
        return formats.date_format(timezone.localtime(moment), DATE_FORMATS.get(language, DATE_FORMATS["en"]))


def bundle_pdf(bundle: Bundle) -> bytes:
    """One PDF, each letter on its own page: opening, paragraphs, the typed name, riding and date."""
    from fpdf import FPDF

    pdf = FPDF(format="letter", unit="mm")
    pdf.set_margins(25, 25, 25)
    pdf.set_auto_page_break(True, margin=25)
    for style, path in font_paths().items():
        pdf.add_font("Letter", style, str(path))
    to = bundle.member.formal_name if bundle.member else riding_name(bundle.district, "en")
    pdf.set_title(f"Letters to {to}")
    pdf.set_creator("Floodlight")
    for letter in bundle.letters:
        pdf.add_page()
        pdf.set_font("Letter", "", 11.5)
        pdf.multi_cell(0, 6.5, letter.opening, align="L", new_x="LMARGIN", new_y="NEXT")
        for paragraph in letter.paragraphs:
            pdf.ln(4)
            pdf.multi_cell(0, 6.5, paragraph, align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(10)
        pdf.set_font("Letter", "B", 11.5)
        pdf.multi_cell(0, 6.5, letter.signer, align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Letter", "", 10)
        pdf.multi_cell(0, 6, letter.signed_line, align="L", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def spreadsheet_safe(value: object) -> str:
    """Text a spreadsheet shows as text: a leading = + - @ tab or CR would start a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


def manifest_rows(delivery: Delivery) -> list[dict[str, str]]:
    rows = []
    for bundle in delivery.bundles:
        member = bundle.member
        rows.append({
            "file": bundle.filename, "fed_code": bundle.district.fed_code, "riding": riding_name(bundle.district, "en"),
            "member": member.full_name if member else "", "honorific": member.honorific if member else "",
            "party": member.party if member else "", "email": member.email if member else "",
            "letters": str(len(bundle.letters)), "note": bundle.note(),
        })
    return rows


def manifest_csv(delivery: Delivery) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=MANIFEST_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in manifest_rows(delivery):
        writer.writerow({key: spreadsheet_safe(value) for key, value in row.items()})
    # With a BOM, Excel opens the accents of French riding names correctly.
    return out.getvalue().encode("utf-8-sig")


def delivery_files(delivery: Delivery, progress: Progress | None = None) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for number, bundle in enumerate(delivery.bundles, start=1):
        files[bundle.filename] = bundle_pdf(bundle)
        if progress is not None and (number % 25 == 0 or number == len(delivery.bundles)):
            progress(f"{number}/{len(delivery.bundles)} PDFs")
    files[MANIFEST] = manifest_csv(delivery)
    return files


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def check_output_folder(out: str | Path) -> Path:
    """A new or empty folder: files of an earlier export must not mix with this one's."""
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise DeliveryError(f"{path} is a file; give a folder (it is created if missing)")
    if path.is_dir() and any(path.iterdir()):
        raise DeliveryError(f"{path} is not empty; give a new or empty folder so earlier exports do not mix in")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DeliveryError(f"cannot create {path}: {error}") from None
    return path


def write_folder(files: dict[str, bytes], folder: Path) -> None:
    try:
        for name, content in files.items():
            (folder / name).write_bytes(content)
    except OSError as error:
        raise DeliveryError(f"cannot write in {folder}: {error}") from None


# --- permission and log ------------------------------------------------------------------------------


def export_letters(study: Any, *, user: Any, channel: str, username: str = "",
                   progress: Progress | None = None) -> tuple[Delivery, dict[str, bytes]]:
    """The delivery's files, after the permission check, logged. ``user`` None: a shell operator
    (already holding the server's credentials), logged under ``username``."""
    if user is not None:
        check_personal_data_permission(user, include_personal=True)
    delivery = collect(study, progress)
    files = delivery_files(delivery, progress)
    log_export(study, user=user, fmt=LOG_FORMAT, channel=channel, row_count=delivery.letter_count,
               include_personal=True, username=username)
    return delivery, files


def admin_zip_name(study: Any) -> str:
    return f"{study.slug}-letters-{file_stamp()}.zip"

