"""The experiment's arms, defined once for the platform (the analysis keeps its own copy in
``analysis/variables.py``, checked against this one by ``tests/analysis/test_arms.py``).

Control shows no image; every other arm is named after the kind of treatment image it shows
(``treatments.models.Kind``). The order is the allocation scheme's default order.
"""

from __future__ import annotations

CONTROL_ARM = "control"
TREATMENT_ARMS: tuple[str, ...] = ("distant", "house", "district_landmark", "provincial_landmark")
ARMS: tuple[str, ...] = (CONTROL_ARM, *TREATMENT_ARMS)
