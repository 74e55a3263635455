"""Forms of the researchers' pages (admin only)."""

from __future__ import annotations

import zipfile
import zlib
from typing import Any

from django import forms
from django.core.files.uploadedfile import SimpleUploadedFile

from .images import LIMITS_TEXT, PhotoError, clean_photo
from .models import DISTRICT_KINDS, Kind, SourcePhoto, slot_errors

REPRESENTATION_ORDERS = [("2023", "2023 (343 districts)"), ("2013", "2013 (338 districts)")]


def representation_order_choices() -> list[tuple[str, str]]:
    """The orders with districts loaded (the official two first), so the choice always resolves."""
    from studyserver.geo.models import District

    loaded = set(District.objects.values_list("representation_order", flat=True).distinct())
    known = [(order, label) for order, label in REPRESENTATION_ORDERS if order in loaded or not loaded]
    return known + [(order, order) for order in sorted(loaded - {order for order, _ in REPRESENTATION_ORDERS})]


class _WithRepresentationOrder(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["representation_order"].choices = representation_order_choices()


class SourcePhotoForm(forms.ModelForm):
    class Meta:
        model = SourcePhoto
        fields = ["kind", "district", "province_code", "place_name_en", "place_name_fr", "image", "credit"]
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
        archive = self.cleaned_data["archive"]
        try:
            with zipfile.ZipFile(archive) as bundle:
                damaged = bundle.testzip()  # reads every member: a damaged archive fails here
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError, ValueError):
            raise forms.ValidationError("This file is not a readable .zip archive; nothing was imported.") from None
        if damaged is not None:
            raise forms.ValidationError(
                f"The archive is damaged ({damaged} fails its checksum); nothing was imported. Zip the photos again."
            )
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
        from studyserver.geo.models import District

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
