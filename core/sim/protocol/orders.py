"""Order messages: openOrder, orderStatus and completedOrder.

openOrder (5) and completedOrder (101) carry the same order body in nearly the same
order, each with a few fields of its own. :data:`ORDER_FIELDS` is that body written
once: every row names one field (or a variable-length group such as the combo legs),
says which of the two messages carry it and from which server version, and how its
value is found. :func:`open_order` and :func:`completed_order` walk the table, so a
field added or moved for one message is added or moved in one place, next to its
twin. The row order mirrors ib_async 2.1.0's ``decoder.py`` (``openOrder`` and
``completedOrder``, which share its ``OrderDecoder``).

Every placeOrder field the simulator does not model is kept in
``OrderRequest.extra`` by :func:`~core.sim.protocol.requests.parse_place_order` and
echoed here as sent (:func:`_x`), so a client reads back the order it placed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Flag

from core.sim.model import UNSET_DOUBLE, Instrument, SimOrder, WhatIfResult
from core.sim.protocol.framing import Field, Out
from core.sim.protocol.requests import ContractSpec, parse_float
from core.sim.protocol.responses import Msg, contract11


class Carrier(Flag):
    """Which order message carries a field."""

    OPEN = 1
    COMPLETED = 2
    BOTH = OPEN | COMPLETED


OPEN, COMPLETED, BOTH = Carrier.OPEN, Carrier.COMPLETED, Carrier.BOTH


@dataclass(frozen=True, slots=True)
class OrderField:
    """One row of :data:`ORDER_FIELDS`.

    ``source`` says where the value comes from: ``"echo"`` the placeOrder field
    ``name`` as the client sent it (``default`` when it did not), ``"value"`` the
    order's own state (``name`` is a key of the values the builder computes),
    ``"const"`` always ``default`` (a field the simulator never sets), ``"group"``
    a variable number of fields built by the group ``name``. The row is sent in the
    messages of ``where`` at server versions ``since <= v < before``.
    """

    name: str
    default: Field = ""
    where: Carrier = BOTH
    source: str = "echo"
    since: int = 0
    before: int = 1_000


def _echo(name: str, default: Field = "", where: Carrier = BOTH, since: int = 0) -> OrderField:
    return OrderField(name, default, where, "echo", since)


def _value(name: str, where: Carrier = BOTH) -> OrderField:
    return OrderField(name, None, where, "value")


def _const(name: str, default: Field, where: Carrier = BOTH) -> OrderField:
    return OrderField(name, default, where, "const")


def _group(name: str, where: Carrier = BOTH, since: int = 0) -> OrderField:
    return OrderField(name, None, where, "group", since)


ORDER_FIELDS: tuple[OrderField, ...] = (
    # (openOrder starts with the orderId and both with the contract: see the builders)
    _value("action"),
    _value("totalQuantity"),
    _value("orderType"),
    _value("lmtPrice"),
    _value("auxPrice"),
    _value("tif"),
    _value("ocaGroup"),
    _value("account"),
    _echo("openClose"),
    _echo("origin", 0),
    _value("orderRef"),
    _value("clientId", OPEN),
    _value("permId"),
    _value("outsideRth"),
    _echo("hidden", False),
    _echo("discretionaryAmt", 0.0),
    _echo("goodAfterTime"),
    _const("sharesAllocation", "", OPEN),  # deprecated
    _echo("faGroup"),
    _echo("faMethod"),
    _echo("faPercentage"),
    OrderField("faProfile", before=177),
    _echo("modelCode"),
    _echo("goodTillDate"),
    _echo("rule80A"),
    _echo("percentOffset"),
    _echo("settlingFirm"),
    _echo("shortSaleSlot", 0),
    _echo("designatedLocation"),
    _echo("exemptCode", -1),
    _echo("auctionStrategy", 0, OPEN),
    _echo("startingPrice"),
    _echo("stockRefPrice"),
    _echo("delta"),
    _echo("stockRangeLower"),
    _echo("stockRangeUpper"),
    _echo("displaySize"),
    _echo("blockOrder", False, OPEN),
    _echo("sweepToFill", False),
    _echo("allOrNone", False),
    _echo("minQty"),
    _echo("ocaType", 0),
    _echo("eTradeOnly", False, OPEN),
    _echo("firmQuoteOnly", False, OPEN),
    _echo("nbboPriceCap", "", OPEN),
    _value("parentId", OPEN),
    _echo("triggerMethod", 0),
    _echo("volatility"),
    _echo("volatilityType"),
    _echo("deltaNeutralOrderType"),
    _echo("deltaNeutralAuxPrice"),
    _group("deltaNeutralOrder"),  # DELTA_NEUTRAL_ORDER_FIELDS, when a type is set
    _echo("continuousUpdate", False),
    _echo("referencePriceType"),
    _value("trailStopPrice"),
    _value("trailingPercent"),
    _const("basisPoints", "", OPEN),
    _const("basisPointsType", "", OPEN),
    _const("comboLegsDescrip", ""),
    _group("comboLegs"),
    _group("scale"),
    _echo("optOutSmartRouting", False, OPEN),
    _echo("clearingAccount"),
    _echo("clearingIntent"),
    _echo("notHeld", False),
    _group("deltaNeutralContract"),
    _group("algo"),
    _echo("solicited", False),
    _value("whatIf", OPEN),
    _value("status"),  # openOrder: the status asked for; completedOrder: the order's state
    _group("whatIfResult", OPEN),
    _value("warningText", OPEN),
    _echo("randomizeSize", False),
    _echo("randomizePrice", False),
    _group("pegBench"),
    _group("conditions"),
    _echo("adjustedOrderType", "", OPEN),
    _echo("triggerPrice", "", OPEN),
    _value("trailStopPrice"),
    _echo("lmtPriceOffset"),
    _echo("adjustedStopPrice", "", OPEN),
    _echo("adjustedStopLimitPrice", "", OPEN),
    _echo("adjustedTrailingAmount", "", OPEN),
    _echo("adjustableTrailingUnit", 0, OPEN),
    _echo("softDollarTier.name", "", OPEN),
    _echo("softDollarTier.val", "", OPEN),
    _const("softDollarTier.displayName", "", OPEN),
    _echo("cashQty"),
    _echo("dontUseAutoPriceForHedge", False),
    _echo("isOmsContainer", False),
    _echo("discretionaryUpToLimitPrice", False, OPEN),
    _echo("usePriceMgmtAlgo", False, OPEN),
    _echo("duration", "", OPEN, since=159),
    _echo("postToAts", "", OPEN, since=160),
    _echo("autoCancelParent", False, OPEN, since=162),
    _const("autoCancelDate", "", COMPLETED),
    _value("filledQuantity", COMPLETED),
    _const("refFuturesConId", 0, COMPLETED),
    _echo("autoCancelParent", False, COMPLETED),
    _const("shareholder", "", COMPLETED),
    _const("imbalanceOnly", False, COMPLETED),
    _const("routeMarketableToBbo", False, COMPLETED),
    _const("parentPermId", 0, COMPLETED),
    _value("completedTime", COMPLETED),
    _value("completedStatus", COMPLETED),
    _group("pegTail", since=170),
)
"""The order body of openOrder and completedOrder, in wire order (see the module doc)."""

DELTA_NEUTRAL_ORDER_FIELDS: tuple[OrderField, ...] = (
    _echo("deltaNeutralConId", 0),
    _echo("deltaNeutralSettlingFirm", "", OPEN),
    _echo("deltaNeutralClearingAccount", "", OPEN),
    _echo("deltaNeutralClearingIntent", "", OPEN),
    _echo("deltaNeutralOpenClose", "", OPEN),
    _echo("deltaNeutralShortSale", False),
    _echo("deltaNeutralShortSaleSlot", 0),
    _echo("deltaNeutralDesignatedLocation"),
)
"""Sent after deltaNeutralAuxPrice only when the order has a delta-neutral order type."""


# --- the variable-length groups and echoed values ----------------------------------------


def _x(extra: dict[str, str], name: str, default: Field = "") -> Field:
    """An echoed placeOrder field, or a default a TWS API decoder can parse."""
    value = extra.get(name)
    if value is None:
        return default
    # Clients send infinity as "Infinite"; decoders parse floats with float()/parseDouble,
    # which know "Infinity" only.
    return "Infinity" if value == "Infinite" else value


def _price(value: float | None) -> Field:
    return UNSET_DOUBLE if value is None else value


def _tag_values(extra: dict[str, str], name: str) -> Msg:
    pairs = json.loads(extra[name]) if name in extra else []
    msg: Msg = [len(pairs)]
    for tag, value in pairs:
        msg += [tag, value]
    return msg


def _combo(contract_legs: Sequence[Sequence[str]], extra: dict[str, str]) -> Msg:
    msg: Msg = [len(contract_legs)]
    for leg in contract_legs:
        msg += list(leg)
    prices = json.loads(extra["orderComboLegs"]) if "orderComboLegs" in extra else []
    msg += [len(prices), *prices]
    msg += _tag_values(extra, "smartComboRoutingParams")
    return msg


def _scale(extra: dict[str, str]) -> Msg:
    msg: Msg = [
        _x(extra, "scaleInitLevelSize"),
        _x(extra, "scaleSubsLevelSize"),
        _x(extra, "scalePriceIncrement"),
    ]
    increment = parse_float(str(_x(extra, "scalePriceIncrement")))
    if increment is not None and increment > 0:
        msg += [
            _x(extra, "scalePriceAdjustValue"),
            _x(extra, "scalePriceAdjustInterval"),
            _x(extra, "scaleProfitOffset"),
            _x(extra, "scaleAutoReset", False),
            _x(extra, "scaleInitPosition"),
            _x(extra, "scaleInitFillQty"),
            _x(extra, "scaleRandomPercent", False),
        ]
    hedge_type = _x(extra, "hedgeType")
    msg.append(hedge_type)
    if hedge_type:
        msg.append(_x(extra, "hedgeParam"))
    return msg


def _algo(extra: dict[str, str]) -> Msg:
    strategy = _x(extra, "algoStrategy")
    msg: Msg = [strategy]
    if strategy:
        msg += _tag_values(extra, "algoParams")
    return msg


def _peg_bench(order_type: str, extra: dict[str, str]) -> Msg:
    if order_type not in ("PEG BENCH", "PEGBENCH"):
        return []
    return [
        _x(extra, "referenceContractId", 0),
        _x(extra, "isPeggedChangeAmountDecrease", False),
        _x(extra, "peggedChangeAmount", 0.0),
        _x(extra, "referenceChangeAmount", 0.0),
        _x(extra, "referenceExchangeId"),
    ]


def _conditions(extra: dict[str, str]) -> Msg:
    conditions = json.loads(extra["conditions"]) if "conditions" in extra else []
    msg: Msg = [len(conditions)]
    for cond in conditions:
        msg += cond
    if conditions:
        msg += [_x(extra, "conditionsIgnoreRth", False), _x(extra, "conditionsCancelOrder", False)]
    return msg


def _delta_neutral_contract(contract: ContractSpec | None) -> Msg:
    if contract is not None and contract.delta_neutral is not None:
        return [True, *contract.delta_neutral]
    return [False]


def _peg_tail(extra: dict[str, str]) -> Msg:
    return [
        _x(extra, "minTradeQty"),
        _x(extra, "minCompeteSize"),
        _x(extra, "competeAgainstBestOffset"),
        _x(extra, "midOffsetAtWhole"),
        _x(extra, "midOffsetAtHalf"),
    ]


def _order_values(order: SimOrder) -> dict[str, Field]:
    """The ``"value"`` rows both messages take from the order itself."""
    req = order.request
    trail_stop = (
        order.trail_stop_price if order.trail_stop_price is not None else req.trail_stop_price
    )
    return {
        "action": req.action,
        "totalQuantity": req.total_quantity,
        "orderType": req.order_type,
        "lmtPrice": _price(req.lmt_price),
        "auxPrice": _price(req.aux_price),
        "tif": req.tif,
        "ocaGroup": req.oca_group,
        "account": req.account,
        "orderRef": req.order_ref,
        "clientId": req.client_id,
        "permId": order.perm_id,
        "outsideRth": req.outside_rth,
        "parentId": req.parent_id,
        "trailStopPrice": _price(trail_stop),
        "trailingPercent": _price(req.trailing_percent),
        "whatIf": req.what_if,
        "filledQuantity": order.filled,
    }


def _what_if_result(w: WhatIfResult | None) -> Msg:
    """The margin and commission preview of a what-if order; unset for any other."""
    if w is None:
        return [UNSET_DOUBLE] * 12 + [""]
    return [
        w.init_margin_before,
        w.maint_margin_before,
        w.equity_with_loan_before,
        w.init_margin_change,
        w.maint_margin_change,
        w.equity_with_loan_change,
        w.init_margin_after,
        w.maint_margin_after,
        w.equity_with_loan_after,
        w.commission,
        w.min_commission,
        w.max_commission,
        w.commission_currency,
    ]


def _order_body(
    where: Carrier,
    v: int,
    order: SimOrder,
    values: dict[str, Field],
    contract: ContractSpec | None,
    what_if: WhatIfResult | None = None,
) -> Msg:
    """The rows of :data:`ORDER_FIELDS` that message ``where`` carries at version ``v``."""
    req = order.request
    e = req.extra
    legs = contract.combo_legs if contract is not None else []
    groups: dict[str, Callable[[], Msg]] = {
        "deltaNeutralOrder": lambda: (
            _rows(DELTA_NEUTRAL_ORDER_FIELDS, where, v, e, values, {})
            if _x(e, "deltaNeutralOrderType")
            else []
        ),
        "comboLegs": lambda: _combo(legs, e),
        "scale": lambda: _scale(e),
        "deltaNeutralContract": lambda: _delta_neutral_contract(contract),
        "algo": lambda: _algo(e),
        "whatIfResult": lambda: _what_if_result(what_if),
        "pegBench": lambda: _peg_bench(req.order_type, e),
        "conditions": lambda: _conditions(e),
        "pegTail": lambda: _peg_tail(e),
    }
    return _rows(ORDER_FIELDS, where, v, e, values, groups)


def _rows(
    table: Sequence[OrderField],
    where: Carrier,
    v: int,
    extra: dict[str, str],
    values: dict[str, Field],
    groups: dict[str, Callable[[], Msg]],
) -> Msg:
    msg: Msg = []
    for row in table:
        if not (row.where & where) or not row.since <= v < row.before:
            continue
        if row.source == "echo":
            msg.append(_x(extra, row.name, row.default))
        elif row.source == "value":
            msg.append(values[row.name])
        elif row.source == "const":
            msg.append(row.default)
        else:
            msg += groups[row.name]()
    return msg


def _exchange(inst: Instrument, contract: ContractSpec | None) -> str:
    """The exchange the client named (SMART, say), else the instrument's."""
    return contract.exchange if contract is not None and contract.exchange else inst.exchange


def open_order(
    v: int,
    order: SimOrder,
    inst: Instrument,
    status: str,
    what_if: WhatIfResult | None = None,
    contract: ContractSpec | None = None,
    warning_text: str = "",
) -> Msg:
    """openOrder (5): about 127 fields at 178, no version field.

    Counters are numbers and booleans ``0``/``1`` (ib_async drops the message otherwise).
    The order's extra placeOrder fields are echoed as sent. ``contract`` is the client's
    contract (for combo legs and the delta-neutral contract), if known.
    """
    values = _order_values(order) | {"status": status, "warningText": warning_text}
    contract_fields = contract11(inst, _exchange(inst, contract))
    msg: Msg = [Out.OPEN_ORDER, order.request.order_id, *contract_fields]
    return msg + _order_body(OPEN, v, order, values, contract, what_if)


def open_order_end() -> Msg:
    """openOrderEnd (53)."""
    return [Out.OPEN_ORDER_END, 1]


def order_status(order: SimOrder, status: str | None = None, mkt_cap_price: float = 0.0) -> Msg:
    """orderStatus (3): no version field at these server versions."""
    req = order.request
    return [
        Out.ORDER_STATUS,
        req.order_id,
        status if status is not None else str(order.state),
        order.filled,
        order.remaining,
        order.avg_fill_price,
        order.perm_id,
        req.parent_id,
        order.last_fill_price,
        req.client_id,
        order.why_held,
        mkt_cap_price,
    ]


def completed_order(
    v: int,
    order: SimOrder,
    inst: Instrument,
    completed_time: str,
    completed_status: str,
    contract: ContractSpec | None = None,
) -> Msg:
    """completedOrder (101): only ever in answer to reqCompletedOrders."""
    values = _order_values(order) | {
        "status": str(order.state),
        "completedTime": completed_time,
        "completedStatus": completed_status,
    }
    msg: Msg = [Out.COMPLETED_ORDER, *contract11(inst, _exchange(inst, contract))]
    return msg + _order_body(COMPLETED, v, order, values, contract)


def completed_orders_end() -> Msg:
    """completedOrdersEnd (102): no version field."""
    return [Out.COMPLETED_ORDERS_END]
