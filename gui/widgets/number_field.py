"""A number field that holds exactly what it shows, or says why the entry is not a number.

Qt's spin boxes "help": they drop keystrokes their validator dislikes (``1e12`` became
``112``), clamp to the range without a word (``99999999999`` became ``999,999,999``) and
show ``-`` while still holding the previous value. A trader then sends a size he never
typed. :class:`NumberField` keeps every keystroke; :func:`parse_number` reads the text
strictly, and an entry that is not a plain number is flagged by the field with the
reason, never silently corrected. Up/Down (and the wheel, when focused) step the value.
"""

from __future__ import annotations

import math
import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QWheelEvent
from PySide6.QtWidgets import QLineEdit, QWidget

__all__ = ["NumberField", "parse_number"]

_PLAIN = re.compile(r"^(\d+(\.\d*)?|\.\d+)$")
_GROUPED = re.compile(r"^\d{1,3}(,\d{3})+(\.\d*)?$")
_SCIENTIFIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def _plain(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}"


def parse_number(
    text: str, *, decimals: int, maximum: float, negative_hint: str = ""
) -> tuple[float | None, str | None]:
    """``(value, None)`` for a plain number, ``(None, reason)`` otherwise.

    Plain means digits, an optional ``.`` and decimals, and ``,`` only between groups
    of three digits ("20,000"; never "1,5", which is a decimal comma elsewhere). Empty
    text is ``(None, "empty")``.
    """
    t = text.strip().replace(" ", "")
    if not t:
        return None, "empty"
    if _SCIENTIFIC.match(t):
        try:
            meant = float(t)
        except ValueError:  # pragma: no cover - the pattern only matches floats
            meant = math.nan
        shown = _plain(meant, 0) if math.isfinite(meant) and abs(meant) < 1e18 else "a huge number"
        return None, f"'{text.strip()}' is scientific notation ({shown}): type the digits"
    if t.startswith("-"):
        hint = f": {negative_hint}" if negative_hint else ""
        return None, f"'{text.strip()}' is negative{hint}"
    if t.startswith("+"):
        t = t[1:]
    if not (_PLAIN.match(t) or _GROUPED.match(t)):
        if "," in t and re.fullmatch(r"[\d,.]+", t):
            return None, f"'{text.strip()}': use '.' for decimals; ',' only groups thousands"
        return None, f"'{text.strip()}' is not a number"
    value = float(t.replace(",", ""))
    frac = t.split(".")[1] if "." in t else ""
    if len(frac.rstrip("0")) > decimals:
        allowed = "whole numbers only" if decimals == 0 else f"at most {decimals} decimals"
        return None, f"'{text.strip()}': {allowed}"
    if value > maximum:
        return None, f"{_plain(value, 0)} is above the most the ticket sends ({_plain(maximum, 0)})"
    return value, None


class NumberField(QLineEdit):
    """A line edit for a positive number (a quantity, a price).

    Signals
    -------
    valueChanged(object): the text changed; ``value()`` / ``error()`` say what it holds.
    """

    valueChanged = Signal(object)

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        decimals: int = 2,
        maximum: float = 1e9,
        step: float = 1.0,
        negative_hint: str = "",
    ) -> None:
        super().__init__(parent)
        self._decimals = decimals
        self._maximum = maximum
        self._step = step
        self._negative_hint = negative_hint
        self._value: float | None = None
        self._error: str | None = "empty"
        self.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.textChanged.connect(self._on_text)
        self.editingFinished.connect(self._tidy)

    # -- what it holds -------------------------------------------------------------------

    def value(self) -> float:
        """The number shown, or 0.0 when the entry is empty or not a number."""
        return self._value if self._value is not None else 0.0

    def error(self) -> str | None:
        """Why the entry is not a number ("empty" when blank); None when it is one."""
        return self._error

    def is_valid(self) -> bool:
        """True when the text is a number (zero included: the ticket judges ranges)."""
        return self._error is None

    def setValue(self, value: float) -> None:
        """Show ``value`` with the field's decimals and group separators."""
        self.setText(self.textFromValue(value))

    def textFromValue(self, value: float) -> str:
        """``value`` as the field writes it ("20,000", "189.50")."""
        return _plain(value, self._decimals)

    def lineEdit(self) -> QLineEdit:
        """The editor itself (the spin box API the ticket's tests use)."""
        return self

    # -- formatting ----------------------------------------------------------------------

    def decimals(self) -> int:
        """Decimals the field accepts and shows."""
        return self._decimals

    def setDecimals(self, decimals: int) -> None:
        """Accept and show ``decimals`` decimals; the entry is read again."""
        self._decimals = max(0, decimals)
        self._on_text(self.text())
        self._tidy()

    def setSingleStep(self, step: float) -> None:
        """What Up/Down add or take away."""
        self._step = step

    def singleStep(self) -> float:
        """What Up/Down add or take away."""
        return self._step

    def setMaximum(self, maximum: float) -> None:
        """The largest number accepted (above it the entry is flagged, not clamped)."""
        self._maximum = maximum
        self._on_text(self.text())

    # -- internals -----------------------------------------------------------------------

    def _on_text(self, text: str) -> None:
        self._value, self._error = parse_number(
            text,
            decimals=self._decimals,
            maximum=self._maximum,
            negative_hint=self._negative_hint,
        )
        self.setToolTip("" if self._error in (None, "empty") else self._error or "")
        self.valueChanged.emit(self._value)

    def _tidy(self) -> None:
        """Re-write a valid entry the way the field shows numbers ("20000" -> "20,000")."""
        if self._value is None:
            return
        text = self.textFromValue(self._value)
        if text != self.text():
            self.setText(text)

    def _step_by(self, steps: int) -> None:
        if self._value is None and self._error != "empty":
            return  # never replace what the trader typed by a guess
        new = max(0.0, round(self.value() + steps * self._step, self._decimals))
        self.setValue(new)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            self._step_by(1 if event.key() == Qt.Key.Key_Up else -1)
            return
        if event.key() in (Qt.Key.Key_PageUp, Qt.Key.Key_PageDown):
            self._step_by(10 if event.key() == Qt.Key.Key_PageUp else -10)
            return
        super().keyPressEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        # Only a focused field: scrolling the ticket must not change a size on the way.
        if not self.hasFocus():
            event.ignore()
            return
        self._step_by(1 if event.angleDelta().y() > 0 else -1)
        event.accept()
