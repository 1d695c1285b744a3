"""The emergency stop button: always visible, hard to brush, fast on purpose.

How it is guarded
-----------------
A single short click does **not** fire. Either of these does:

* **press and hold** for ``hold_ms`` (400 ms): a darker fill and a white bar along the
  bottom sweep across the button while it is held, so the person sees it arming (the
  white text stays readable); letting go early cancels;
* **two presses within** ``double_press_ms`` (2 s): the first short click *arms* the
  button (it turns amber-bordered and reads "PRESS AGAIN TO STOP"); the second press
  fires at once, on press, not release.

The keyboard shortcut (default ``Ctrl+Shift+X``, application-wide so it works from any
dock or floating window) has the same two-press guard; holding the keys down also
fires, because key auto-repeat delivers the second press.

After firing, the button ignores further triggers for ``cooldown_ms`` (1 s) so a hold
that ends in a tap does not send the stop twice. The widget only emits ``triggered``;
the window connects it to core's emergency stop.
"""

from __future__ import annotations

from PySide6.QtCore import (
    QEasingCurve,
    QElapsedTimer,
    QRectF,
    QSize,
    Qt,
    QTimer,
    QVariantAnimation,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QShortcut,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from gui import shortcuts, theme

DEFAULT_SHORTCUT = shortcuts.get("emergency_stop").keys


class EmergencyStopButton(QWidget):
    """A large red stop button with a press-and-hold / double-press guard.

    Parameters
    ----------
    hold_ms: how long a press must be held to fire.
    double_press_ms: window in which a second press fires.
    shortcut: key sequence with the same two-press guard ("" for none).
    cooldown_ms: triggers ignored for this long after one fired.

    Signals
    -------
    triggered(): the stop was deliberately requested.
    armedChanged(bool): the first press armed the button (True) or the window lapsed.
    """

    triggered = Signal()
    armedChanged = Signal(bool)

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        hold_ms: int = 400,
        double_press_ms: int = 2000,
        shortcut: str = DEFAULT_SHORTCUT,
        cooldown_ms: int = 1000,
    ) -> None:
        super().__init__(parent)
        self.hold_ms = hold_ms
        self.double_press_ms = double_press_ms
        self.cooldown_ms = cooldown_ms
        self.setObjectName("emergencyStop")
        self.setAccessibleName("Emergency stop")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumSize(220, 58)
        self._progress = 0.0
        self._pressed = False
        self._armed = False
        self._busy_text = ""
        self._hold = QVariantAnimation(self)
        self._hold.setStartValue(0.0)
        self._hold.setEndValue(1.0)
        self._hold.setDuration(hold_ms)
        self._hold.setEasingCurve(QEasingCurve.Type.Linear)
        self._hold.valueChanged.connect(self._on_hold_progress)
        self._hold.finished.connect(self._on_hold_finished)
        self._disarm_timer = QTimer(self)
        self._disarm_timer.setSingleShot(True)
        self._disarm_timer.timeout.connect(self.disarm)
        self._since_fired = QElapsedTimer()
        self.shortcut: QShortcut | None = None
        if shortcut:
            self.shortcut = QShortcut(QKeySequence(shortcut), self)
            shortcuts.tag(self.shortcut, "emergency_stop")
            self.shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut)
            self.shortcut.setAutoRepeat(True)
            self.shortcut.activated.connect(self.press_shortcut)
        self._update_tooltip()

    # ----- public API ----------------------------------------------------------------
    def is_armed(self) -> bool:
        """Whether one press has been made and a second one would fire."""
        return self._armed

    def hold_progress(self) -> float:
        """How far the current press-and-hold has come (0..1)."""
        return self._progress

    def press_shortcut(self) -> None:
        """The keyboard shortcut: the first press arms, the second within the window fires."""
        if not self.isEnabled():
            return  # read-only: the shortcut is as dead as the button
        if self._armed:
            self._fire()
        else:
            self._arm()

    def disarm(self) -> None:
        """Forget a first press (the double-press window lapsed, or Escape)."""
        self._disarm_timer.stop()
        if self._armed:
            self._armed = False
            self.armedChanged.emit(False)
            self.update()

    def set_busy_text(self, text: str) -> None:
        """Show a short status (e.g. "STOPPING… 3 orders left") instead of the hint."""
        self._busy_text = text
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(280, 62)

    # ----- input ---------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        event.accept()
        if self._armed:
            self._fire()
            return
        self._pressed = True
        self._hold.stop()
        self._hold.start()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton or not self._pressed:
            return super().mouseReleaseEvent(event)
        event.accept()
        self._pressed = False
        if self._hold.state() == QVariantAnimation.State.Running:
            # Released before the hold completed: a short click arms (second press fires).
            self._hold.stop()
            self._progress = 0.0
            self._arm()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self._armed:
            self.disarm()
            return
        if event.key() in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if not event.isAutoRepeat() or self._armed:
                self.press_shortcut()  # focused button: same two-press guard as the shortcut
            return
        super().keyPressEvent(event)

    # ----- internals -----------------------------------------------------------------
    def _arm(self) -> None:
        self._armed = True
        self._disarm_timer.start(self.double_press_ms)
        self.armedChanged.emit(True)
        self.update()

    def _on_hold_progress(self, value: object) -> None:
        self._progress = float(value) if isinstance(value, int | float) else 0.0
        self.update()

    def _on_hold_finished(self) -> None:
        if self._pressed:
            self._pressed = False
            self._fire()

    def _fire(self) -> None:
        self._hold.stop()
        self._progress = 0.0
        self.disarm()
        if self._since_fired.isValid() and self._since_fired.elapsed() < self.cooldown_ms:
            return
        self._since_fired.start()
        self.update()
        self.triggered.emit()

    def _update_tooltip(self) -> None:
        keys = (
            self.shortcut.key().toString(QKeySequence.SequenceFormat.NativeText)
            if self.shortcut
            else ""
        )
        self.setToolTip(
            "Emergency stop: cancel every order and flatten every position, then HALT.\n"
            f"Press and hold {self.hold_ms} ms, or press twice within "
            f"{self.double_press_ms / 1000:g} s" + (f" (keyboard: {keys} twice)." if keys else ".")
        )

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(1.5, 1.5, -1.5, -1.5)
        radius = 8.0
        path = QPainterPath()
        path.addRoundedRect(rect, radius, radius)
        base = QColor(theme.STOP_RED_HOT if self.underMouse() or self._armed else theme.STOP_RED)
        if not self.isEnabled():
            base = QColor(theme.RAISED)  # read-only: visibly not a live button
        p.fillPath(path, base)
        if self._progress > 0:
            # Darken, not lighten: white text on a pale pink sweep was unreadable. The
            # bright bar along the bottom carries the progress on its own.
            p.save()
            p.setClipPath(path)
            done = rect.width() * self._progress
            p.fillRect(QRectF(rect.left(), rect.top(), done, rect.height()), QColor(0, 0, 0, 95))
            bar = 4.0
            p.fillRect(
                QRectF(rect.left(), rect.bottom() - bar, done, bar), QColor(255, 255, 255, 235)
            )
            p.restore()
        border = QColor(theme.AMBER) if self._armed else QColor(255, 255, 255, 60)
        p.setPen(QPen(border, 3 if self._armed else 1.5))
        p.drawPath(path)

        # Octagon "stop" sign on the left.
        size = min(rect.height() - 18, 40.0)
        icon_rect = QRectF(rect.left() + 14, rect.center().y() - size / 2, size, size)
        theme.icon("stop").paint(p, icon_rect.toRect())

        text_left = icon_rect.right() + 12
        text_rect = QRectF(
            text_left, rect.top() + 6, rect.right() - text_left - 10, rect.height() - 12
        )
        title_font = QFont(theme.ui_font())
        title_font.setPointSizeF(theme.UI_POINT_SIZE * 1.45)
        title_font.setWeight(QFont.Weight.Black)
        title_font.setLetterSpacing(QFont.SpacingType.PercentageSpacing, 104)
        # 9.5 pt medium in full white: the old 8.5 pt at 78 % white on red was a squint.
        hint_font = QFont(theme.ui_font())
        hint_font.setPointSizeF(theme.UI_POINT_SIZE * 0.95)
        hint_font.setWeight(QFont.Weight.Medium)
        title = "PRESS AGAIN TO STOP" if self._armed else "EMERGENCY STOP"
        keys = self.shortcut.key().toString() if self.shortcut else ""
        hints: list[str]
        if not self.isEnabled():
            hints = ["off in read-only mode", "read-only"]  # it cannot stop anything here
        elif self._armed:
            hints = [f"within {self.double_press_ms / 1000:g} s, or it disarms"]
        elif self._busy_text:
            hints = [self._busy_text]
        elif keys:
            # The longest that fits: the shortcut is never cut ("Ctrl+Shift+…").
            hints = [
                f"hold, or press twice · {keys} \N{MULTIPLICATION SIGN}2",
                f"hold, or {keys} \N{MULTIPLICATION SIGN}2",
                f"{keys} \N{MULTIPLICATION SIGN}2",
            ]
        else:
            hints = ["hold, or press twice"]
        p.setPen(QColor("#ffffff"))
        upper = QRectF(
            text_rect.left(), text_rect.top(), text_rect.width(), text_rect.height() * 0.6
        )
        # At the toolbar's 230-280 px "PRESS AGAIN TO STOP" was cut mid-letter: shrink
        # the title (not below 10 pt) to fit, then elide.
        while (
            QFontMetrics(title_font).horizontalAdvance(title) > upper.width()
            and title_font.pointSizeF() > 10.0
        ):
            title_font.setPointSizeF(title_font.pointSizeF() - 0.5)
        title = QFontMetrics(title_font).elidedText(
            title, Qt.TextElideMode.ElideRight, int(upper.width())
        )
        p.setFont(title_font)
        p.drawText(upper, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom), title)
        p.setPen(QColor("#ffffff"))
        p.setFont(hint_font)
        lower = QRectF(
            text_rect.left(), upper.bottom() + 1, text_rect.width(), text_rect.height() * 0.4
        )
        # The first hint that fits; elided rather than cut mid-letter if none does.
        metrics = QFontMetrics(hint_font)
        hint = next((h for h in hints if metrics.horizontalAdvance(h) <= lower.width()), hints[-1])
        hint = QFontMetrics(hint_font).elidedText(
            hint, Qt.TextElideMode.ElideRight, int(lower.width())
        )
        p.drawText(lower, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop), hint)
        p.end()

    def enterEvent(self, event: object) -> None:
        self.update()

    def leaveEvent(self, event: object) -> None:
        self.update()
