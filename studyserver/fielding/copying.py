"""“New study from this one”: a pilot's settings, questionnaire version and allocation scheme
configuration become a new, closed study. Participants, answers, personal data, the allocation
sequence, counters and the entry secret are never copied (the copy gets its own secret).

Treatment material is shared, not duplicated: approved images belong to districts and arms, not to a
study, so the new study shows the same material the first one uses (DEMO images only if it is a
demo study, as for any study).
"""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction

from studyserver.assignment.models import AllocationScheme
from studyserver.studies.models import Study, new_entry_secret

# Fields that describe the original study's own life, not its design.
# The entry secret is the pilot's: a copy shares it with nobody yet (it gets a fresh one), so a
# link signed for one never opens the other.
_STUDY_NOT_COPIED = frozenset({"id", "slug", "title", "is_open", "declined_count", "created_at",
                               "questionnaire_since", "consent_version", "entry_secret",
                               "exclusion_frozen_at"})
_SCHEME_NOT_COPIED = frozenset({"id", "study", "created_at", "is_simulation"})


def copy_study(study: Study, *, slug: str, title: str) -> Study:
    """A new closed study configured like ``study`` (every other setting copied field by field)."""
    values = {field.attname: getattr(study, field.attname) for field in Study._meta.concrete_fields
              if field.name not in _STUDY_NOT_COPIED}
    with transaction.atomic():
        copy = Study(slug=slug, title=title, is_open=False, entry_secret=new_entry_secret(), **values)
        copy.full_clean()
        copy.save()
        try:
            scheme = study.allocation_scheme
        except ObjectDoesNotExist:
            scheme = None
        if scheme is not None:
            AllocationScheme.objects.create(study=copy, **{
                field.attname: getattr(scheme, field.attname) for field in AllocationScheme._meta.concrete_fields
                if field.name not in _SCHEME_NOT_COPIED
            })
    return copy
