"""OrderSpec: the GUI's plain description of an order, turned into IB's by core."""

from __future__ import annotations

import pytest

from core.order_entry import OrderSpec


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (OrderSpec("BUY", 100), ("BUY", 100, "MKT", None, None)),
        (OrderSpec("SELL", 5, "LMT", limit_price=190.5), ("SELL", 5, "LMT", 190.5, None)),
        (OrderSpec("BUY", 1, "STP", stop_price=5900.25), ("BUY", 1, "STP", None, 5900.25)),
        (
            OrderSpec("SELL", 2, "STP LMT", limit_price=99.5, stop_price=100.0),
            ("SELL", 2, "STP LMT", 99.5, 100.0),
        ),
    ],
)
def test_spec_becomes_the_order_it_describes(spec, expected):
    order = spec.to_order()
    prices = (
        order.lmtPrice if order.orderType in ("LMT", "STP LMT") else None,
        order.auxPrice if order.orderType in ("STP", "STP LMT") else None,
    )
    assert (order.action, order.totalQuantity, order.orderType, *prices) == expected
    assert order.tif == "DAY" and not order.outsideRth


def test_tif_and_outside_rth_are_carried():
    order = OrderSpec("BUY", 10, "LMT", limit_price=1.0, tif="GTC", outside_rth=True).to_order()
    assert (order.tif, order.outsideRth) == ("GTC", True)


def test_an_unusable_entry_is_kept_as_typed_for_the_preview_to_refuse():
    # a zero size or a zero price is not "fixed" on the way: the preview says what is wrong
    assert OrderSpec("BUY", 0).to_order().totalQuantity == 0
    assert OrderSpec("BUY", 10, "LMT", limit_price=0.0).to_order().lmtPrice == 0.0
