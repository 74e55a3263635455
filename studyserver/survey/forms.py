"""Django forms built from the instrument: one field per visible item, messages in the page's language."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.forms import BoundField
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

from studyserver.instrument.definition import Instrument, Item, Page


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
    if item.type in {"choice", "scale", "yesno"}:
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
    """The form of one questionnaire page, for one participant (conditions already applied)."""

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
        for item in self.items:
            self.fields[item.code] = _field_for(item, instrument, language, province_code)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # A ticked signature box needs a typed name; the name is what the letter carries.
        if "letter_signed" in self.fields and cleaned.get("letter_signed") and not (cleaned.get("signature_name") or "").strip():
            self.add_error("signature_name", self.instrument.text("error_signature", self.language))
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

    def rows(self) -> list[dict[str, Any]]:
        """What the template needs per item: the bound field, the item, whether it is a group, and
        a group's options already rendered (see :func:`radio_options_html`)."""
        rows = []
        optional = self.instrument.texts["optional"].get(self.language) if "optional" in self.instrument.texts else ""
        for item in self.items:
            field = self[item.code]
            grouped = item.type in {"choice", "scale", "yesno"}
            row = {"item": item, "field": field, "grouped": grouped,
                   "options": radio_options_html(field) if grouped else ""}
            row["html"] = field_html(row, optional)
            rows.append(row)
        return rows


_INPUT_TEMPLATES = frozenset({"django/forms/widgets/input.html", "django/forms/widgets/checkbox.html"})


def _widget_html(field: BoundField) -> str:
    """``str(field)``: for a plain ``<input>`` (text, e-mail, checkbox…) built like the radio options
    (:func:`_input_tag`) from the widget's own context, without rendering its template; any other
    widget (a textarea) through Django."""
    widget = field.field.widget
    if (widget.template_name not in _INPUT_TEMPLATES or field.field.show_hidden_initial
            or field.field.localize or "id" in widget.attrs):
        return conditional_escape(str(field))
    attrs = field.build_widget_attrs({}, widget)
    if field.auto_id:
        attrs.setdefault("id", field.auto_id)
    return _input_tag(widget.get_context(field.html_name, field.value(), attrs)["widget"])


def field_html(row: Mapping[str, Any], optional: str) -> str:
    """One question's markup, character for character what ``survey/_field.html`` renders for the row.

    Rendering that template once per question (an include each) was a third of a page's time; a
    test compares this with the template for every page, in both languages, with and without
    errors. ``optional``: the instrument's "optional" text in the page's language.
    """
    field, item = row["field"], row["item"]
    errors = list(field.errors)  # the messages, as the template's loop yields them
    auto_id = conditional_escape(field.auto_id)
    error_html = "".join(f'<p class="field-error" id="{auto_id}-error">{conditional_escape(error)}</p>' for error in errors)
    has_error = " has-error" if errors else ""
    label = conditional_escape(field.label)
    optional_html = "" if item.required else f' <span class="optional">{conditional_escape(optional)}</span>'
    if row["grouped"]:
        scale = " scale" if item.type == "scale" else ""
        described = f' aria-describedby="{auto_id}-error"' if errors else ""
        html = (f'\n<fieldset class="question{has_error}{scale}" id="q-{conditional_escape(item.code)}"{described}>\n'
                f'  <legend>{label}{optional_html}</legend>\n'
                f'  {error_html}\n'
                f'  <div class="options">\n'
                f'  {conditional_escape(row["options"])}\n'
                f'  </div>\n'
                f'</fieldset>\n')
    elif item.type == "checkbox":
        html = (f'\n<div class="question checkbox{has_error}">\n'
                f'  {error_html}\n'
                f'  {_widget_html(field)}<label for="{auto_id}">{label}</label>\n'
                f'</div>\n')
    else:
        html = (f'\n<div class="question{has_error}">\n'
                f'  <label for="{auto_id}">{label}{optional_html}</label>\n'
                f'  {error_html}\n'
                f'  {_widget_html(field)}\n'
                f'</div>\n')
    return mark_safe(html + "\n")  # every interpolated value is escaped above


def _input_tag(widget: Mapping[str, Any]) -> str:
    """Django's ``django/forms/widgets/input.html`` (with ``attrs.html``), character for character."""
    value = "" if widget["value"] is None else f' value="{conditional_escape(str(widget["value"]))}"'
    attrs = "".join(
        f" {conditional_escape(name)}" if attr is True else f' {conditional_escape(name)}="{conditional_escape(str(attr))}"'
        for name, attr in widget["attrs"].items() if attr is not False
    )
    return f'<input type="{conditional_escape(widget["type"])}" name="{conditional_escape(widget["name"])}"{value}{attrs}>'


def radio_options_html(field: BoundField) -> str:
    """A radio group's options, the markup ``_field.html`` used to render one widget template at a time.

    A questionnaire page has hundreds of options; rendering each through Django's widget templates
    cost two thirds of the page's time. The markup is the same (a test compares it with Django's).
    """
    return mark_safe("".join(
        f'\n    <div class="option">{_input_tag(radio.data)}<label for="{conditional_escape(radio.data["attrs"].get("id") or "")}">'
        f'{conditional_escape(radio.data["label"])}</label></div>\n  '
        for radio in field
    ))  # every interpolated value is escaped above


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
