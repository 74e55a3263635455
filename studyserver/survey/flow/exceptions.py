"""Why a request changed nothing: it does not fit the participant's position in the flow."""

from __future__ import annotations


class FlowError(Exception):
    """A request that does not fit the participant's position in the flow (nothing was changed)."""


class StepNotAvailable(FlowError):
    """A page ahead of the participant's current step (tampering or a stale link)."""


class AlreadySubmitted(FlowError):
    """A page already stored and locked (the back button or a double submit)."""
