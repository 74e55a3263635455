"""Django forms built from the instrument: one field per visible item, messages in the page's language."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from django import forms
from django.core.cache import caches
from django.forms import BoundField
from django.forms.renderers import Jinja2

from studyserver.instrument.definition import Instrument, Item, Page

# One renderer (one Jinja2 environment, its compiled templates cached) for every questionnaire page;
# the other forms (consent, postal code, admin) keep the project's default renderer.
QUESTION_RENDERER = Jinja2()
GROUPED_TYPES = frozenset({"choice", "scale", "yesno"})  # a radio group: a fieldset with a legend
# Types whose value is one of the questionnaire's own options: their markup holds nothing typed.
OPTION_TYPES = GROUPED_TYPES | {"checkbox"}
QUESTION_MARKUP_CACHE = "questions"  # settings.CACHES: per process, off with DEBUG


class QuestionField(BoundField):
    """A question's bound field, rendered by ``{{ field.as_field_group }}``: the label (a legend for a
    radio group), its errors and the widget through Django's widget templates. The template also
    needs the item (type, code, whether it is optional) and the page's word for "optional"."""

    template_name = "survey/_field.html"

    def get_context(self) -> dict[str, Any]:
        context = super().get_context()
        item = self.form.items_by_code[self.name]
        context.update(item=item, grouped=item.type in GROUPED_TYPES, optional=self.form.optional_text)
        return context

    def as_field_group(self) -> str:
        # A question's markup is most of a page's cost, and thousands of participants see the same
        # few hundred variants: each is rendered once per process.
        key = self.markup_key()
        if key is None:
            return super().as_field_group()
        cache = caches[QUESTION_MARKUP_CACHE]
        markup = cache.get(key)
        if markup is None:
            markup = super().as_field_group()
            cache.set(key, markup)
        return markup

    def markup_key(self) -> str | None:
        """The cache key of this question's markup: a digest of everything the markup is made of.

        None when the markup would hold an error message or text the participant typed, which are
        rendered afresh and never kept."""
        item = self.form.items_by_code[self.name]
        value = self.value()
        if self.errors or (item.type not in OPTION_TYPES and value not in (None, "")):
            return None
        made_of = (
            self.template_name, item.code, item.type, item.required, self.label, self.form.optional_text,
            self.auto_id, self.html_name, self.form.use_required_attribute,
            tuple(getattr(self.field, "choices", ())), sorted(self.field.widget.attrs.items()),
            None if value is None else str(value),
        )
        return "question:" + hashlib.sha256(repr(made_of).encode("utf-8")).hexdigest()


def _field_for(item: Item, instrument: Instrument, language: str, province_code: str | None) -> forms.Field:
    messages = {
        "required": instrument.text("error_required", language),
        "invalid_choice": instrument.text("error_invalid_choice", language),
    }
    label = item.text.get(language)
    if item.type == "integer":
        messages["invalid"] = instrument.text("error_integer", language, min=item.min_value, max=item.max_value)
        messages["min_value"] = messages["max_value"] = messages["invalid"]
        return forms.IntegerField(
            label=label,
            required=item.required,
            min_value=item.min_value,
            max_value=item.max_value,
            error_messages=messages,
            widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": item.min_value, "max": item.max_value}),
        )
    if item.type in GROUPED_TYPES:
        return forms.TypedChoiceField(
            label=label,
            required=item.required,
            choices=[(o.code, o.text.get(language)) for o in item.options_for(province_code)],
            coerce=int,
            empty_value=None,
            widget=forms.RadioSelect,
            error_messages=messages,
        )
    if item.type == "checkbox":
        return forms.BooleanField(label=label, required=False)
    if item.type == "email":
        messages["invalid"] = instrument.text("error_email", language)
        return forms.EmailField(
            label=label,
            required=item.required,
            max_length=item.max_length,
            error_messages=messages,
            widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        )
    messages["max_length"] = instrument.text("error_too_long", language, max=item.max_length)
    return forms.CharField(
        label=label,
        required=item.required,
        max_length=item.max_length,
        error_messages=messages,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )


class InstrumentPageForm(forms.Form):
    """The form of one questionnaire page, for one participant (conditions already applied).

    Each question renders with ``{{ field.as_field_group }}`` (see :class:`QuestionField`)."""

    bound_field_class = QuestionField
    # Django's Jinja2 renderer: a page has up to a hundred radio options, and with the template
    # language's per-include cost the longest page's questions took 4.8 ms to render instead of the
    # hand-built markup's 1.4 ms; with Jinja2, 1.9 ms.
    default_renderer = QUESTION_RENDERER

    def __init__(
        self,
        *args: Any,
        page: Page,
        instrument: Instrument,
        language: str,
        earlier_answers: Mapping[str, Any],
        province_code: str | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.page = page
        self.instrument = instrument
        self.language = language
        self.items = [item for item in page.items if item.visible(earlier_answers, province_code)]
        self.items_by_code = {item.code: item for item in self.items}
        self.optional_text = instrument.text("optional", language) if "optional" in instrument.texts else ""
        for item in self.items:
            self.fields[item.code] = _field_for(item, instrument, language, province_code)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # A ticked signature box needs a typed name; the name is what the letter carries.
        signature, name = self.page.signature, self.page.signature_name
        if (signature is not None and name is not None and signature.code in self.fields
                and cleaned.get(signature.code) and not (cleaned.get(name.code) or "").strip()):
            self.add_error(name.code, self.instrument.text("error_signature", self.language))
        return cleaned

    def split_answers(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(answers stored with the responses, personal values stored apart) from cleaned data."""
        answers: dict[str, Any] = {}
        personal: dict[str, str] = {}
        for item in self.items:
            value = self.cleaned_data.get(item.code)
            if item.type == "checkbox":
                value = 1 if value else 0
            if item.is_personal:
                personal[item.personal_field] = (value or "").strip()
            else:
                answers[item.code] = value
        return answers, personal


class ConsentForm(forms.Form):
    decision = forms.ChoiceField(choices=[("agree", "agree"), ("decline", "decline")])
    adult = forms.BooleanField(required=False)

    def __init__(self, *args: Any, instrument: Instrument, language: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instrument = instrument
        self.language = language
        self.fields["decision"].error_messages["required"] = instrument.text("error_required", language)
        self.fields["decision"].error_messages["invalid_choice"] = instrument.text("error_invalid_choice", language)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("decision") == "agree" and not cleaned.get("adult"):
            self.add_error("adult", self.instrument.text("consent_age_required", self.language))
        return cleaned


class PostalCodeForm(forms.Form):
    postal_code = forms.CharField(max_length=20, strip=True)

    def __init__(self, *args: Any, instrument: Instrument, language: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["postal_code"]
        field.label = instrument.text("postal_label", language)
        field.error_messages["required"] = instrument.text("error_required", language)
        field.error_messages["max_length"] = instrument.text("error_too_long", language, max=20)
        field.widget.attrs.update({"autocomplete": "postal-code", "autocapitalize": "characters", "spellcheck": "false"})


class DistrictChoiceForm(forms.Form):
    NONE_OF_THESE = "none"

    district = forms.ChoiceField(widget=forms.RadioSelect)

    def __init__(self, *args: Any, choices: list[tuple[str, str]], instrument: Instrument, language: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["district"]
        field.choices = choices
        field.error_messages["required"] = instrument.text("error_required", language)
        field.error_messages["invalid_choice"] = instrument.text("error_invalid_choice", language)
