"""A scroll area for a form in a dock (the order ticket, the risk panel)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt
from PySide6.QtWidgets import QFrame, QScrollArea, QWidget

#: Pixels of height asked beyond the form's own hint (see :meth:`VerticalScrollArea.sizeHint`).
SLACK = 6


class VerticalScrollArea(QScrollArea):
    """Holds a form that scrolls up and down only.

    As wide as the form needs (it never scrolls sideways, and its rows are never
    clipped), as tall as the form asks when there is room; on a short screen it
    scrolls instead of setting the window's minimum height. Qt's own scroll area
    caps its size hint at 24 lines of text, which cut the order ticket short.
    """

    def __init__(self, widget: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(widget)
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # The form grew (a new limit row, a longer label): ask the dock for the width.
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()
        return super().eventFilter(watched, event)

    def _bar_width(self) -> int:
        return self.verticalScrollBar().sizeHint().width()

    def minimumSizeHint(self) -> QSize:
        form = self.widget()
        if form is None:
            return super().minimumSizeHint()
        return QSize(form.minimumSizeHint().width() + self._bar_width(), 80)

    def sizeHint(self) -> QSize:
        form = self.widget()
        if form is None:
            return super().sizeHint()
        hint = form.sizeHint().expandedTo(form.minimumSizeHint())
        # A little slack: a label re-polished by a later style sheet (a colour change)
        # can grow by a pixel, which in a dock sized to the hint brought up a scroll bar.
        return QSize(hint.width() + self._bar_width(), hint.height() + SLACK)
