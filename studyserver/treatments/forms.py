"""Forms of the researchers' pages (admin only)."""

from __future__ import annotations

import re
import secrets
import zipfile
import zlib
from typing import Any

from django import forms
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from studyserver.geo.models import District

from .images import LIMITS_TEXT, PhotoError, clean_photo
from .models import DISTRICT_KINDS, Kind, SourcePhoto, slot_errors

REPRESENTATION_ORDERS = [("2023", "2023 (343 districts)"), ("2013", "2013 (338 districts)")]


def representation_order_choices() -> list[tuple[str, str]]:
    """The orders with districts loaded (the official two first), so the choice always resolves."""
    loaded = set(District.objects.values_list("representation_order", flat=True).distinct())
    known = [(order, label) for order, label in REPRESENTATION_ORDERS if order in loaded or not loaded]
    return known + [(order, order) for order in sorted(loaded - {order for order, _ in REPRESENTATION_ORDERS})]


def _order_field_defaults(form: forms.BaseForm) -> None:
    """The order choices loaded, the latest study's order first chosen (see orders.py)."""
    from .orders import default_representation_order

    form.fields["representation_order"].choices = representation_order_choices()
    default = default_representation_order()
    if default:
        form.initial.setdefault("representation_order", default)


def _refuse_unused_order(form: forms.BaseForm, order: str | None) -> None:
    from .orders import order_problem

    problem = order_problem(order) if order else None
    if problem:
        form.add_error("representation_order", problem)


class _WithRepresentationOrder(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _order_field_defaults(self)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        _refuse_unused_order(self, data.get("representation_order"))
        return data


PENDING_DIR = "treatments/pending/"
_PENDING_NAME = re.compile(r"^[A-Za-z0-9_-]{16,64}\.(?:jpe?g|png|webp|gif|bmp|tiff?)$")


class SourcePhotoForm(forms.ModelForm):
    """One source photo, its district given by riding code; the chosen file survives an error elsewhere."""

    representation_order = forms.ChoiceField(
        choices=REPRESENTATION_ORDERS, help_text="The representation order the riding code refers to.")
    fed_code = forms.CharField(
        required=False, max_length=5, label="Riding code",
        help_text="For house and district landmark photos: the district's fed_code, e.g. 24053.")
    pending_image = forms.CharField(required=False, widget=forms.HiddenInput)
    generate = forms.BooleanField(
        required=False, initial=True, label="Queue generation",
        help_text="Queue the flood generation for this photo once it is saved.")

    class Meta:
        model = SourcePhoto
        fields = ["kind", "representation_order", "fed_code", "province_code", "place_name_en", "place_name_fr",
                  "image", "credit", "generate", "pending_image"]
        help_texts = {"image": LIMITS_TEXT + "; stored re-encoded."}

    def clean_image(self) -> Any:
        image = self.cleaned_data.get("image")
        if image is None or not hasattr(image, "content_type"):
            return image  # unchanged on edit: the stored file was checked when it came in
        image.seek(0)
        try:
            photo = clean_photo(image.read())
        except PhotoError as error:
            message = str(error)
            raise forms.ValidationError(f"{message[:1].upper()}{message[1:]}.") from None
        return SimpleUploadedFile(photo.filename(image.name), photo.content, content_type=photo.content_type)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "image" in self.fields:  # absent when the page is view-only
            self.fields["image"].required = False  # a file kept from the previous try also counts
        district = self.instance.district if self.instance.pk and self.instance.district_id else None
        if district is not None:
            self.initial.setdefault("fed_code", district.fed_code)
            self.initial.setdefault("representation_order", district.representation_order)
        if "representation_order" in self.fields:
            _order_field_defaults(self)
        if self.instance.pk:
            self.fields["generate"].initial = False
        pending = self._pending_name()
        if pending and "image" in self.fields:
            self.fields["image"].help_text = (
                "The photo chosen on the previous try is kept; choose another file only to replace it.")

    def _pending_name(self) -> str:
        name = (self.data.get(self.add_prefix("pending_image")) or "") if self.is_bound else ""
        return name if _PENDING_NAME.match(name) and default_storage.exists(PENDING_DIR + name) else ""

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("kind")
        code = (data.get("fed_code") or "").strip()
        district = None
        current = self.instance.district if self.instance.pk and self.instance.district_id else None
        if kind in DISTRICT_KINDS and code and (current is None or (current.representation_order, current.fed_code)
                                                 != (data.get("representation_order"), code)):
            _refuse_unused_order(self, data.get("representation_order"))  # a photo kept as it was is not re-judged
        if kind in DISTRICT_KINDS and code:
            district = District.objects.filter(representation_order=data.get("representation_order"),
                                               fed_code=code).first()
            if district is None:
                self.add_error("fed_code", f"No district {code} in the {data.get('representation_order')} "
                               "representation order (riding codes are five digits, e.g. 24053).")
        elif kind in DISTRICT_KINDS:
            self.add_error("fed_code", f"A {kind} photo needs the riding code of its district.")
        elif code:
            self.add_error("fed_code", "Only house and district landmark photos belong to a district.")
        self.instance.district = district
        if kind in DISTRICT_KINDS:
            data["province_code"] = ""
        if not data.get("image") and not self._pending_name() and not (self.instance.pk and self.instance.image):
            self.add_error("image", "Choose the photo file.")
        return data

    def _update_errors(self, errors: Any) -> None:
        # The model speaks of "district"; this form asks for its riding code.
        if hasattr(errors, "error_dict") and "district" in errors.error_dict:
            moved = errors.error_dict.pop("district")
            if "fed_code" not in self._errors:
                errors.error_dict["fed_code"] = moved
        super()._update_errors(errors)

    def _post_clean(self) -> None:
        super()._post_clean()
        image = self.cleaned_data.get("image")
        if self._errors and image and hasattr(image, "read"):
            # The browser forgets a chosen file when the page comes back with an error: keep it here.
            suffix = (image.name.rsplit(".", 1)[-1] if "." in image.name else "jpg").lower()
            name = f"{secrets.token_urlsafe(18)}.{suffix}"
            image.seek(0)
            default_storage.save(PENDING_DIR + name, image)
            data = self.data.copy()
            data[self.add_prefix("pending_image")] = name
            self.data = data
            self.fields["image"].help_text = (
                f"{image.name} is kept from this try; choose another file only to replace it.")
            self._bound_fields_cache.pop("image", None)  # bound during cleaning, with the old help text

    def save(self, commit: bool = True) -> SourcePhoto:
        pending = self._pending_name()
        if pending and not self.files.get(self.add_prefix("image")):
            with default_storage.open(PENDING_DIR + pending) as handle:
                self.instance.image.save(pending, File(handle), save=False)
            default_storage.delete(PENDING_DIR + pending)
        return super().save(commit)


class ReviewForm(forms.Form):
    stimulus = forms.IntegerField(min_value=1)
    action = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject"), ("regenerate", "Regenerate")])
    note = forms.CharField(required=False, max_length=2000)


class BulkUploadForm(_WithRepresentationOrder):
    archive = forms.FileField(
        help_text="A .zip with the photos and one CSV manifest (manifest.csv) with the columns "
        "filename, kind, fed_code, province_code, place_name_en, place_name_fr.",
    )
    representation_order = forms.ChoiceField(
        choices=REPRESENTATION_ORDERS, help_text="The representation order the fed_code values refer to."
    )
    generate = forms.BooleanField(required=False, initial=True, help_text="Queue generation for every new photo.")

    def clean_archive(self) -> Any:
        from .bulk import MAX_TOTAL_BYTES, declared_size_problem

        archive = self.cleaned_data["archive"]
        if archive.size > MAX_TOTAL_BYTES:
            raise forms.ValidationError(f"The archive is larger than {MAX_TOTAL_BYTES // 1024 ** 3} GB; split it.")
        # Only the zip's directory is read here: its declared sizes and ratios are checked before
        # anything is decompressed (a damaged member is found when the import reads it).
        try:
            with zipfile.ZipFile(archive) as bundle:
                problem = declared_size_problem(bundle)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError, ValueError):
            raise forms.ValidationError("This file is not a readable .zip archive; nothing was imported.") from None
        if problem:
            raise forms.ValidationError(problem)
        archive.seek(0)
        return archive


class StreetViewForm(_WithRepresentationOrder):
    kind = forms.ChoiceField(choices=[(k, label) for k, label in Kind.choices if k != Kind.DISTANT])
    representation_order = forms.ChoiceField(choices=REPRESENTATION_ORDERS)
    fed_code = forms.CharField(required=False, max_length=5, help_text="For house and district landmark.")
    province_code = forms.CharField(required=False, max_length=2, help_text="For a provincial landmark.")
    place_name_en = forms.CharField(max_length=200)
    place_name_fr = forms.CharField(required=False, max_length=200)
    location = forms.CharField(max_length=300, help_text='An address or "latitude,longitude".')
    heading = forms.FloatField(required=False, min_value=0, max_value=360)
    pitch = forms.FloatField(required=False, initial=0, min_value=-90, max_value=90)
    fov = forms.IntegerField(required=False, initial=90, min_value=10, max_value=120)
    generate = forms.BooleanField(required=False, initial=True, help_text="Queue generation right away.")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("kind")
        district = None
        if kind in DISTRICT_KINDS and data.get("fed_code"):
            district = District.objects.filter(
                representation_order=data.get("representation_order"), fed_code=data["fed_code"].strip()
            ).first()
            if district is None:
                self.add_error("fed_code", "No district with this code in that representation order.")
                return data
        data["district"] = district
        province = (data.get("province_code") or "").strip().upper()
        data["province_code"] = "" if kind in DISTRICT_KINDS else province
        for field, message in slot_errors(kind, district, data["province_code"]).items():
            self.add_error("fed_code" if field == "district" else field, message)
        return data

    def source_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "kind": data["kind"], "district": data["district"], "province_code": data["province_code"],
            "place_name_en": data["place_name_en"], "place_name_fr": data.get("place_name_fr") or "",
            "location": data["location"], "heading": data.get("heading"), "pitch": data.get("pitch"),
            "fov": data.get("fov"), "generate": data.get("generate", False),
        }
