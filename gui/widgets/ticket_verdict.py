"""What the order ticket's send button says: the order it would send, or why it cannot.

Qt-free: a pure function of the order in words, core's preview (risk's verdict
included) and the ticket's states (read-only, the account's trading state, the
connection, the entries of the fields), so each wording is unit-tested without a
widget. :class:`gui.widgets.order_ticket.OrderTicket` judges the order with
:func:`judge_send` on every change and asks :func:`confirmation_reason` before a large
order goes; :meth:`gui.widgets.ticket_form.TicketForm.show_send` draws the verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.events import TradingState
from core.order_entry import OrderPreview
from gui.models.formatting import money

__all__ = [
    "CHECKING",
    "CHOOSE_SYMBOL",
    "READ_ONLY",
    "SendVerdict",
    "confirmation_reason",
    "judge_send",
    "order_terms",
]

#: Why nothing can be sent before an instrument is chosen (the button says it).
CHOOSE_SYMBOL = "choose a symbol"
#: Why nothing can be sent in read-only mode (``--readonly`` or a read-only connection).
READ_ONLY = "read-only mode: sends no orders"
#: The button's second line while core has not judged the order yet (no session).
CHECKING = "checking…"
#: The time in force an order has unless the trader picks another (not said on the button).
DEFAULT_TIF = "DAY"


@dataclass(frozen=True, slots=True)
class SendVerdict:
    """What the send button and the reasons under the risk verdict say."""

    order: str  # the order in words, as it would be sent
    blocked: tuple[str, ...]  # why it cannot be sent, most fundamental first
    listed: tuple[str, ...]  # the reasons listed under the verdict (not said elsewhere)
    sendable: bool

    @property
    def reason(self) -> str:
        """The button's second line: the first reason it cannot go ("" when it can)."""
        if self.sendable:
            return ""
        return self.blocked[0] if self.blocked else CHECKING

    @property
    def tooltip(self) -> str:
        """The button's tooltip (and accessible description): the order, and every
        reason it cannot go (the button's first line may be cut short then)."""
        if self.sendable:
            return f"Send {self.order} (Enter)"
        return f"Cannot send {self.order}:\n" + "\n".join(self.blocked or (CHECKING,))


#: ``(amount, currency) -> (amount in the base currency, its name)``, None without a rate.
ToBase = Callable[[float, str], tuple[float, str] | None]


def order_terms(order: str, tif: str = DEFAULT_TIF, outside_rth: bool = False) -> str:
    """``order`` ("BUY 3 AAPL STP 234.60") with every term sent that is not the default:
    the time in force unless DAY, and "outside RTH" when the order may fill outside
    regular trading hours ("BUY 3 AAPL STP 234.60 IOC · outside RTH")."""
    words = order
    if tif and tif != DEFAULT_TIF:
        words += f" {tif}"
    if outside_rth:
        words += " · outside RTH"
    return words


def judge_send(
    order: str,
    preview: OrderPreview | None,
    *,
    chosen: bool,
    tif: str = DEFAULT_TIF,
    outside_rth: bool = False,
    field_problems: Sequence[str] = (),
    readonly: bool = False,
    state: TradingState | None = None,
    state_reason: str = "",
    offline_reason: str = "",
    offline_shown: bool = False,
) -> SendVerdict:
    """Whether ``order`` can be sent, and why not.

    ``order`` is the order in words; the verdict's :attr:`SendVerdict.order` adds the
    terms sent that are not the default (``tif``, ``outside_rth``: :func:`order_terms`),
    so the button says everything that goes out. ``preview`` is core's (None: not
    judged, as while a field is unusable or without a session); ``chosen``: an
    instrument is; ``field_problems``: why entries cannot be used; ``state`` and
    ``state_reason``: the account's trading state; ``offline_reason``: why nothing can
    be sent now ("" when connected), ``offline_shown`` when the ticket already says it
    under the symbol field.
    """
    halted = state is TradingState.HALTED
    halted_text = f"HALTED: {state_reason or 'trading is stopped'}"
    blocked: list[str] = []
    if readonly:
        blocked.append(READ_ONLY)
    if halted:
        blocked.append(halted_text)
    if offline_reason:
        blocked.append(offline_reason)
    if not chosen:
        blocked.append(CHOOSE_SYMBOL)
    blocked += field_problems
    risk_problems = preview.problems if preview is not None else ()
    # HALTED is said once, first; risk's own wording of it would only repeat it.
    blocked += [p for p in risk_problems if not (halted and "HALTED" in p)]
    # The list under the verdict leaves out what the ticket says elsewhere already: the
    # trading state has its own line whenever it is not ACTIVE, no symbol is the
    # button's, and being offline is said under the symbol field while no instrument is.
    said = {CHOOSE_SYMBOL}
    if halted:
        said.add(halted_text)
    if offline_reason and offline_shown:
        said.add(offline_reason)
    return SendVerdict(
        order=order_terms(order, tif, outside_rth),
        blocked=tuple(blocked),
        listed=tuple(p for p in blocked if p not in said),
        sendable=not blocked and preview is not None and preview.approved,
    )


def confirmation_reason(
    notional: float | None,
    threshold: float | None,
    currency: str,
    *,
    was: float | None = None,
    to_base: ToBase | None = None,
) -> str | None:
    """What is large about an order whose ``notional`` is above ``threshold`` (the
    trader confirms it first), or None: it goes at once (no threshold, no notional).

    The one rule for the ticket's new order and the orders grid's modification: a
    modification (``was``: the working order's notional now) is asked about when it
    raises the notional above the threshold; one that keeps or lowers it goes at once
    (making an order smaller is never held up). The threshold is in the account's base
    currency, like the risk limits: ``to_base`` (core's ``RiskManager.in_base``) converts
    the order's notional; with no rate yet the order is asked about, never waved through.
    """
    if threshold is None or notional is None:
        return None
    base_now, base_was, base = notional, was, currency
    if to_base is not None and currency:
        converted = to_base(notional, currency)
        if converted is None:
            return (
                f"Notional {money(notional, currency)}: no exchange rate yet to compare it "
                f"with {threshold:,.2f} in the base currency."
            )
        base_now, base = converted
        if was is not None:
            before = to_base(was, currency)
            base_was = before[0] if before is not None else None
    if base_now <= threshold:
        return None

    def shown(amount: float, in_base: float | None) -> str:
        if base == currency or in_base is None:
            return money(amount, currency)
        return f"{money(amount, currency)} = {money(in_base, base)}"

    if was is None:
        return f"Notional {shown(notional, base_now)} is above {money(threshold, base)}."
    if base_was is not None and base_now <= base_was:
        return None
    return (
        f"Notional {shown(was, base_was)} → {shown(notional, base_now)}"
        f" is above {money(threshold, base)}."
    )
