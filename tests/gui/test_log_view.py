"""Log view: the handler forwards records on the GUI thread; level and text filters."""

from __future__ import annotations

import logging
import threading

import pytest

from core.events import AuditRecorded
from gui.widgets.log_view import AuditView, LogModel, LogView, QtLogHandler


@pytest.fixture
def logger():
    log = logging.getLogger("ibconsole.test.logview")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)


def make_view(qtbot, logger) -> LogView:
    view = LogView.with_handler(logger)
    qtbot.addWidget(view)
    return view


def test_logged_record_then_row_in_model(qtbot, logger):
    view = make_view(qtbot, logger)
    logger.warning("price of %s is stale", "SPY")
    view.log_model.flush()
    row = view.log_model.row_at(0)
    assert row["message"] == "price of SPY is stale"
    assert row["level"] == "WARNING"
    assert row["logger"] == "ibconsole.test.logview"


def test_exception_then_traceback_in_message(qtbot, logger):
    view = make_view(qtbot, logger)
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    view.log_model.flush()
    assert "ValueError: boom" in view.log_model.row_at(0)["message"]


def test_record_from_worker_thread_then_model_updated_on_gui_thread(qtbot, logger):
    seen: list[int] = []

    class Recording(LogModel):
        def on_record(self, record):
            seen.append(threading.get_ident())
            super().on_record(record)

    model = Recording()
    handler = QtLogHandler(model).attach(logger)
    try:
        worker = threading.Thread(target=lambda: logger.error("from a worker"))
        worker.start()
        worker.join()
        qtbot.waitUntil(lambda: model.rowCount() == 1, timeout=2000)
    finally:
        handler.detach()
    assert seen == [threading.get_ident()]
    assert model.row_at(0)["message"] == "from a worker"


def test_level_filter_then_lower_levels_hidden(qtbot, logger):
    view = make_view(qtbot, logger)
    logger.debug("d")
    logger.info("i")
    logger.warning("w")
    logger.error("e")
    view.log_model.flush()
    assert view.min_level() == logging.INFO
    assert view.proxy.rowCount() == 3
    view.set_min_level(logging.WARNING)
    assert view.proxy.rowCount() == 2
    view.level_combo.setCurrentIndex(view.level_combo.findData(logging.DEBUG))
    assert view.proxy.rowCount() == 4


def test_text_filter_then_only_matching_records(qtbot, logger):
    view = make_view(qtbot, logger)
    logger.info("order 7 filled")
    logger.info("reconnected")
    logger.info("order 8 cancelled")
    view.log_model.flush()
    view.filter_edit.setText("order")
    assert view.proxy.rowCount() == 2
    view.filter_edit.setText("order cancelled")
    assert view.proxy.rowCount() == 1
    assert "1 of 3" in view.count_label.text()


def test_newest_record_shown_first(qtbot, logger):
    view = make_view(qtbot, logger)
    for i in range(3):
        logger.info("n%d", i)
    view.log_model.flush()
    assert view.proxy.index(0, view.log_model.column_of("message")).data() == "n2"


def test_handler_detached_when_closed(qtbot, logger):
    view = make_view(qtbot, logger)
    assert view.handler in logger.handlers
    view.handler.close()
    assert view.handler not in logger.handlers


def test_audit_filter_finds_an_action_by_its_words_or_its_raw_name(qtbot):
    view = AuditView()
    qtbot.addWidget(view)
    view.audit.on_audit_recorded(
        AuditRecorded("risk", "set_trading_state", "meanrev: ACTIVE -> REDUCING", "loss 80%")
    )
    view.audit.on_audit_recorded(AuditRecorded("gui", "place", "BUY 100 AAPL", "sent"))
    view.audit.flush()
    for text in ("set_trading_state", "trading state", "Set trading"):
        view.filter_edit.setText(text)
        assert view.proxy.rowCount() == 1, text
        assert view.proxy.index(0, view.audit.column_of("actor")).data() == "risk"
    view.filter_edit.setText("place")
    assert view.proxy.rowCount() == 1


def test_ib_cancel_confirmation_is_information_not_an_error():
    record = logging.LogRecord(
        "ib_async.wrapper",
        logging.ERROR,
        __file__,
        1,
        "Error 202, reqId 7: Order Canceled - reason:",
        None,
        None,
    )
    row = QtLogHandler.to_row(record)
    assert row["level"] == "INFO" and row["levelno"] == logging.INFO
    record.msg = "Error 201, reqId 7: Order rejected"
    assert QtLogHandler.to_row(record)["level"] == "ERROR"
