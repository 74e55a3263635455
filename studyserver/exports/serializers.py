"""Read-only representations for the research API (and its OpenAPI schema)."""

from __future__ import annotations

from rest_framework import serializers

from studyserver.studies.models import Study

from .codebook import CODEBOOK_COLUMNS


class StudySerializer(serializers.ModelSerializer):
    participants = serializers.IntegerField(source="participant_count", read_only=True,
                                            help_text="Participants who entered.")
    instrument_version = serializers.CharField(source="questionnaire.label", read_only=True, default="",
                                               help_text="The questionnaire version new participants get.")

    class Meta:
        model = Study
        fields = ("slug", "title", "is_open", "demo", "representation_order", "consent_version",
                  "instrument_version", "min_exposure_seconds", "exclusion_rules", "exclusion_flags", "exclusion_frozen_at", "declined_count", "participants",
                  "created_at")
        read_only_fields = fields


class _PerArm(serializers.DictField):
    def __init__(self, **kwargs):
        super().__init__(child=serializers.IntegerField(), **kwargs)


class FunnelSerializer(serializers.Serializer):
    study = serializers.CharField()
    started = serializers.IntegerField()
    consented = serializers.IntegerField()
    declined = serializers.IntegerField()
    placed = serializers.IntegerField()
    abandoned_total = serializers.IntegerField(help_text="Not finished and not seen for abandoned_after_hours.")
    in_progress = serializers.IntegerField(help_text="Not finished, seen more recently.")
    abandoned_after_hours = serializers.IntegerField()
    screened_out = _PerArm(help_text="Screened out, by reason.")
    screened_out_total = serializers.IntegerField()
    screened_out_details = _PerArm(help_text='Screened out, by "reason: what was missing" (e.g. "material_missing: house").')
    assigned = _PerArm(help_text="Assigned, per arm.")
    exposed = _PerArm(help_text="Treatment page submitted, per arm (control: 0, no such page).")
    completed = _PerArm(help_text="Completed, per arm.")
    attrited = _PerArm(help_text="Assigned but not completed, per arm (withdrawals included).")
    abandoned = _PerArm(help_text="Assigned, not finished, not seen for abandoned_after_hours, per arm.")
    withdrawn = _PerArm(help_text="Withdrew their data after assignment, per arm.")
    assigned_total = serializers.IntegerField()
    completed_total = serializers.IntegerField()
    attrited_total = serializers.IntegerField()
    quality_flags = serializers.DictField(child=_PerArm(), help_text="Each respondent-quality flag, per arm.")
    quality_flags_total = _PerArm(help_text="Each respondent-quality flag, everyone (assigned or not).")
    excluded = _PerArm(help_text="Excluded by the pre-registered rule, per arm.")
    excluded_total = serializers.IntegerField(help_text="Excluded by the pre-registered rule, everyone.")
    exclusion_rule = serializers.ListField(child=serializers.CharField(), help_text="The flags that exclude.")
    exclusion_frozen_at = serializers.DateTimeField(allow_null=True, help_text="When the rule was frozen (opening).")


class CodebookRowSerializer(serializers.Serializer):
    def get_fields(self):
        return {name: serializers.CharField(allow_blank=True) for name in CODEBOOK_COLUMNS}


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
