"""Which representation order a researcher's photos refer to: the studies', never a silent guess.

District codes repeat across orders (New Brunswick's 13001–13010 exist in 2013 and in 2023, as
different ridings), so a photo filed under the wrong order attaches to the wrong district without
any error. The upload forms, the Street View import and ``generate_treatments`` therefore default to
the latest study's order, and refuse an order that no study uses.
"""

from __future__ import annotations

from studyserver.geo.models import District
from studyserver.studies.models import Study


def study_orders() -> dict[str, list[str]]:
    """Representation order → the slugs of the studies on it (latest first)."""
    orders: dict[str, list[str]] = {}
    for slug, order in Study.objects.order_by("-created_at", "-pk").values_list("slug", "representation_order"):
        orders.setdefault(order, []).append(slug)
    return orders


def default_representation_order() -> str | None:
    """The latest study's order; without a study, the only order with districts (None: no single one)."""
    latest = Study.objects.order_by("-created_at", "-pk").first()
    if latest is not None:
        return latest.representation_order
    loaded = sorted(District.objects.order_by().values_list("representation_order", flat=True).distinct())
    return loaded[0] if len(loaded) == 1 else None


def order_problem(order: str) -> str | None:
    """Why photos for districts of ``order`` would reach no study (None: some study uses it, or none exists)."""
    orders = study_orders()
    if not orders or order in orders:
        return None
    used = "; ".join(f"{', '.join(slugs)} on {used_order}" for used_order, slugs in sorted(orders.items()))
    return (f"No study uses the {order} representation order ({used}): its riding codes name other districts "
            "than the studies' (e.g. 13001 exists in both orders). Choose the order of the study the photos are for.")
