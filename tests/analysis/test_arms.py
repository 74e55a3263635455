"""The analysis keeps its own list of the arms (it imports nothing of studyserver): it must be the
platform's, in the same order (the export's arm column and the regressions' dummies use it)."""

from analysis import variables
from studyserver.studies import arms
from studyserver.treatments.models import Kind


def test_the_analysis_arms_are_the_platforms():
    assert variables.CONTROL_ARM == arms.CONTROL_ARM
    assert variables.TREATMENT_ARMS == arms.TREATMENT_ARMS
    assert variables.ARMS == arms.ARMS


def test_every_treatment_arm_is_a_kind_of_treatment_image():
    assert sorted(arms.TREATMENT_ARMS) == sorted(Kind.values)
