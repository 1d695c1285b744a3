"""Order statuses as a transition table: which change IB (or the console) may make.

IB reports an order's status in ``orderStatus`` and ``openOrder`` messages, and repeats
them freely (after a reconnect, for every partial fill). Most repeats are harmless, but
some sequences cannot be true: a filled order working again, a cancelled one pending.
Such a message is a stale or reordered one, and showing it would tell the trader an
order works that does not. :func:`allowed` is the one place that knows; the trade
manager applies it to every update it publishes and logs what it refuses
(NautilusTrader keeps its order state machine the same way).

Statuses the console adds: ``NotSent`` (never written) and ``Lost`` (written, not known
to the gateway after a drop) from :mod:`core.events`; a Lost order that turns up may
take any status.
"""

from __future__ import annotations

from core.events import LOST, NOT_SENT

PENDING_SUBMIT = "PendingSubmit"
API_PENDING = "ApiPending"
PRE_SUBMITTED = "PreSubmitted"
SUBMITTED = "Submitted"
PENDING_CANCEL = "PendingCancel"
API_CANCELLED = "ApiCancelled"
CANCELLED = "Cancelled"
FILLED = "Filled"
INACTIVE = "Inactive"
VALIDATION_ERROR = "ValidationError"

_LIVE = frozenset({PENDING_SUBMIT, API_PENDING, PRE_SUBMITTED, SUBMITTED, PENDING_CANCEL})
_ENDED = frozenset({CANCELLED, API_CANCELLED, FILLED, INACTIVE, VALIDATION_ERROR})

#: status -> the statuses that may follow it (a status may always repeat).
TRANSITIONS: dict[str, frozenset[str]] = {
    "": _LIVE | _ENDED | {NOT_SENT, LOST},  # first sight: anything
    PENDING_SUBMIT: _LIVE | _ENDED | {NOT_SENT, LOST},
    API_PENDING: _LIVE | _ENDED | {LOST},
    PRE_SUBMITTED: (_LIVE - {PENDING_SUBMIT}) | _ENDED | {LOST},
    SUBMITTED: (_LIVE - {PENDING_SUBMIT}) | _ENDED | {LOST},
    # a cancel IB refused (e.g. 161, already filling) leaves the order working
    PENDING_CANCEL: frozenset({PRE_SUBMITTED, SUBMITTED}) | _ENDED,
    # IB reports executions and the final Filled after a cancel in a race
    CANCELLED: frozenset({API_CANCELLED, FILLED}),
    API_CANCELLED: frozenset({CANCELLED, FILLED}),
    FILLED: frozenset(),
    # Inactive (held, rejected for now) can come back to work, or end
    INACTIVE: (_LIVE - {PENDING_SUBMIT}) | _ENDED,
    VALIDATION_ERROR: (_LIVE - {PENDING_SUBMIT}) | _ENDED,
    NOT_SENT: frozenset(),
    LOST: _LIVE | _ENDED,  # it turned up after all
}


def allowed(previous: str, new: str) -> bool:
    """True when an order may go from ``previous`` to ``new`` (unknown statuses pass:
    IB may add some, and hiding an update for a status we do not know would be worse)."""
    if previous == new or previous not in TRANSITIONS or new not in TRANSITIONS:
        return True
    return new in TRANSITIONS[previous]
