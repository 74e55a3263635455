"""Members of Parliament (with the history of who held each seat) and the letters addressed to them."""

from __future__ import annotations

from django.db import models


class Representative(models.Model):
    """A Member of Parliament for one district, as loaded from the House of Commons list.

    Rows are never deleted: when a load finds another member in a seat (a by-election) or none
    (a vacancy), the previous member's row stays, with ``is_current`` off and ``replaced_at`` set,
    so a letter keeps pointing at the member who was current when it was signed.
    """

    class Salutation(models.TextChoices):
        MS = "ms", "Ms."
        MR = "mr", "Mr."
        UNKNOWN = "", "Not known (neutral salutation)"

    district = models.ForeignKey("geo.District", on_delete=models.PROTECT, related_name="representatives")
    honorific = models.CharField(max_length=40, blank=True, help_text='e.g. "Hon." or "Right Hon."')
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    salutation = models.CharField(max_length=2, choices=Salutation.choices, blank=True)
    party = models.CharField(max_length=120, blank=True)
    province = models.CharField(max_length=60, blank=True)
    email = models.EmailField(blank=True)
    start_date = models.DateField(null=True, blank=True, help_text="Start of the member's term (from the file).")
    constituency_in_file = models.CharField(max_length=200, blank=True,
                                            help_text="The constituency as spelled in the loaded file.")
    is_current = models.BooleanField(default=True, db_index=True)
    current_since = models.DateTimeField(help_text="When a load first made this member current.")
    replaced_at = models.DateTimeField(null=True, blank=True,
                                       help_text="When a load found the seat held by someone else, or vacant.")
    source = models.CharField(max_length=300, blank=True, help_text="File or URL of the last load that listed them.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["district"], condition=models.Q(is_current=True),
                                    name="one_current_member_per_district"),
        ]
        ordering = ["district__province_code", "district__name_en", "-current_since"]

    def __str__(self) -> str:
        state = "" if self.is_current else " (former)"
        return f"{self.full_name}, {self.district.name_en}{state}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def formal_name(self) -> str:
        """The name with its honorific, as on an envelope ("Hon. Jane Doe")."""
        return f"{self.honorific} {self.full_name}".strip()

    def same_person(self, first_name: str, last_name: str) -> bool:
        """By name: a re-elected member gets a new start date in the House's list but stays the same person."""
        return (self.first_name.casefold(), self.last_name.casefold()) == (first_name.casefold(), last_name.casefold())


class AddressedLetter(models.Model):
    """The letter as a participant was shown it: to whom, in which words (no signature here).

    Written when the letter page is served, so the member recorded is the one the participant saw;
    the typed signature stays in ``survey.PersonalData`` and is deleted with it on withdrawal.
    """

    participant = models.OneToOneField("survey.Participant", on_delete=models.CASCADE,
                                       related_name="addressed_letter")
    district = models.ForeignKey("geo.District", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+")
    representative = models.ForeignKey(Representative, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="letters",
                                       help_text="Empty: the seat was vacant or no roster was loaded.")
    language = models.CharField(max_length=2)
    opening = models.TextField(help_text="The first line, naming the member or the riding.")
    body = models.TextField(help_text="The paragraphs shown, separated by blank lines.")
    addressed_at = models.DateTimeField()

    def __str__(self) -> str:
        to = self.representative.full_name if self.representative else "the riding's MP"
        return f"letter of {self.participant_id} to {to}"

    @property
    def paragraphs(self) -> list[str]:
        return [p for p in self.body.split("\n\n") if p.strip()]


class LetterDelivery(AddressedLetter):
    """Not a table: the admin's entry for downloading the signed letters (``admin.LetterDeliveryAdmin``)."""

    class Meta:
        proxy = True
        verbose_name = "signed letters download"
        verbose_name_plural = "download signed letters"
