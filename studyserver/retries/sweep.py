"""The sweep: every deferred piece of work that is due is tried again, without a person.

Run by Celery beat (``retries.sweep_deferred_work``, every ``FLOODLIGHT_SWEEP_SECONDS``) in a
deployment, or by ``manage.py sweep_deferred_work [--every SECONDS]`` in the embedded mode. Safe to
run several at once and as often as wanted: each piece of work is claimed under a row lock before
it is done, so nothing is sent twice.

This app knows no other: an app with deferred work registers its sweep in its
``AppConfig.ready`` (``register_sweep("information_emails", "information e-mails", sweep)``), and
the sweep runs them in the order they were registered (that of ``INSTALLED_APPS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery import shared_task

#: A sweep of one kind of deferred work: counts of what it did, by outcome ("sent": 2).
Sweep = Callable[[], dict[str, int]]


@dataclass(frozen=True)
class DeferredWork:
    key: str  # the name of its counts in the report and the task's result
    label: str  # what the command prints
    sweep: Sweep


_REGISTRY: dict[str, DeferredWork] = {}


def register_sweep(key: str, label: str, sweep: Sweep) -> None:
    """Add an app's deferred work to the sweep (once per key: registering again replaces it)."""
    _REGISTRY[key] = DeferredWork(key, label, sweep)


def registered_work() -> list[DeferredWork]:
    return list(_REGISTRY.values())


@dataclass
class SweepReport:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # by key, in registration order
    labels: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        def line(counts: dict[str, int]) -> str:
            return ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "nothing due"

        return "; ".join(f"{self.labels.get(key, key)}: {line(counts)}" for key, counts in self.counts.items())


def sweep_deferred_work() -> SweepReport:
    report = SweepReport()
    for work in registered_work():
        report.counts[work.key] = work.sweep()
        report.labels[work.key] = work.label
    return report


@shared_task(name="retries.sweep_deferred_work", ignore_result=True)
def sweep_task() -> dict[str, Any]:
    return sweep_deferred_work().counts
