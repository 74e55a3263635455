"""studyserver.core: the shared plain helpers."""

import pytest

from studyserver.core.geometry import great_circle_km


def test_great_circle_distance():
    assert great_circle_km(45.4215, -75.6972, 45.4215, -75.6972) == 0
    assert great_circle_km(0, 0, 0, 1) == pytest.approx(111.195, abs=0.001)  # one degree of the equator
    ottawa_montreal = great_circle_km(45.4215, -75.6972, 45.5019, -73.5674)
    assert ottawa_montreal == pytest.approx(166.0, abs=1.5)
    assert great_circle_km(45.5019, -73.5674, 45.4215, -75.6972) == ottawa_montreal
