"""The emergency stop's guard: a brush does nothing; a hold or a double press fires."""

from __future__ import annotations

from PySide6.QtCore import QAbstractAnimation, QPoint, Qt, QVariantAnimation

from gui.widgets.emergency_stop import EmergencyStopButton

LEFT = Qt.MouseButton.LeftButton


def make_button(qtbot, **kw) -> EmergencyStopButton:
    button = EmergencyStopButton(**kw)
    qtbot.addWidget(button)
    button.resize(300, 60)
    button.show()
    qtbot.waitExposed(button)
    return button


def center(button: EmergencyStopButton) -> QPoint:
    return button.rect().center()


def hold_of(button: EmergencyStopButton) -> QVariantAnimation:
    """The hold's fill: a Qt animation of ``hold_ms``. Tests move its time with
    ``setCurrentTime`` instead of waiting for it; a stopped one never finishes."""
    hold = button.findChild(QVariantAnimation)
    assert hold is not None
    return hold


#: A hold far longer than any test: only the test moves the hold's time.
LONG_HOLD_MS = 60_000


def test_brief_click_then_not_triggered_only_armed(qtbot, signal_log):
    button = make_button(qtbot)
    fired = signal_log(button.triggered)
    qtbot.mouseClick(button, LEFT, pos=center(button))
    assert hold_of(button).state() == QAbstractAnimation.State.Stopped  # a click is not a hold
    assert len(fired) == 0
    assert button.is_armed()


def test_press_released_before_hold_time_then_not_triggered(qtbot, signal_log):
    button = make_button(qtbot, hold_ms=LONG_HOLD_MS)
    hold = hold_of(button)
    fired = signal_log(button.triggered)
    qtbot.mousePress(button, LEFT, pos=center(button))
    hold.setCurrentTime(LONG_HOLD_MS * 4 // 10)  # 40 % of the hold
    assert button.hold_progress() == 0.4  # the fill is visible while held
    qtbot.mouseRelease(button, LEFT, pos=center(button))
    assert hold.state() == QAbstractAnimation.State.Stopped  # it will not complete later
    assert len(fired) == 0
    assert button.hold_progress() == 0


def test_press_and_hold_then_triggered(qtbot, signal_log):
    button = make_button(qtbot, hold_ms=LONG_HOLD_MS)
    fired = signal_log(button.triggered)
    qtbot.mousePress(button, LEFT, pos=center(button))
    hold_of(button).setCurrentTime(LONG_HOLD_MS - 1)
    assert len(fired) == 0  # not before the hold time
    hold_of(button).setCurrentTime(LONG_HOLD_MS)
    assert len(fired) == 1
    qtbot.mouseRelease(button, LEFT, pos=center(button))
    assert len(fired) == 1


def test_two_presses_within_window_then_triggered_on_second_press(qtbot, signal_log):
    button = make_button(qtbot)
    fired = signal_log(button.triggered)
    qtbot.mouseClick(button, LEFT, pos=center(button))
    assert len(fired) == 0
    qtbot.mousePress(button, LEFT, pos=center(button))  # fires on press, not release
    assert len(fired) == 1
    qtbot.mouseRelease(button, LEFT, pos=center(button))
    assert len(fired) == 1
    assert not button.is_armed()


def test_second_press_after_window_lapsed_then_not_triggered(qtbot, signal_log):
    button = make_button(qtbot, double_press_ms=100)
    fired = signal_log(button.triggered)
    qtbot.mouseClick(button, LEFT, pos=center(button))
    qtbot.waitUntil(lambda: not button.is_armed(), timeout=1000)
    qtbot.mouseClick(button, LEFT, pos=center(button))
    assert len(fired) == 0
    assert button.is_armed()


def test_shortcut_once_then_armed_not_triggered(qtbot, signal_log):
    button = make_button(qtbot)
    fired = signal_log(button.triggered)
    button.shortcut.activated.emit()
    assert len(fired) == 0
    assert button.is_armed()


def test_shortcut_twice_within_window_then_triggered(qtbot, signal_log):
    button = make_button(qtbot)
    fired = signal_log(button.triggered)
    button.shortcut.activated.emit()
    button.shortcut.activated.emit()
    assert len(fired) == 1


def test_shortcut_keys_typed_twice_then_triggered(qtbot, signal_log):
    button = make_button(qtbot)
    with qtbot.waitActive(button):
        button.activateWindow()
    fired = signal_log(button.triggered)
    mods = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(button, Qt.Key.Key_X, mods)
    assert len(fired) == 0
    qtbot.keyClick(button, Qt.Key.Key_X, mods)
    assert len(fired) == 1


def test_shortcut_is_application_wide_with_the_default_keys(qtbot):
    button = make_button(qtbot)
    assert button.shortcut.context() == Qt.ShortcutContext.ApplicationShortcut
    assert button.shortcut.key().toString() == "Ctrl+Shift+X"


def test_escape_when_armed_then_disarmed(qtbot, signal_log):
    button = make_button(qtbot)
    fired = signal_log(button.triggered)
    button.setFocus()
    button.press_shortcut()
    qtbot.keyClick(button, Qt.Key.Key_Escape)
    assert not button.is_armed()
    button.press_shortcut()
    assert len(fired) == 0


def test_trigger_then_cooldown_ignores_an_immediate_second_trigger(qtbot, signal_log):
    button = make_button(qtbot, cooldown_ms=1000)
    fired = signal_log(button.triggered)
    for _ in range(4):
        button.press_shortcut()
    assert len(fired) == 1
