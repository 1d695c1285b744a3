"""The console's dark theme: palette, fonts, colour rules, icons and the style sheet.

One place decides every colour, so models, widgets and the chart agree. The palette is
calm (blue-grey surfaces, one accent) and the signal colours are the colour-blind-friendly
teal/red pair most charting tools use for gains and losses on dark backgrounds. Numbers
use a monospace font so digits line up in columns and do not jiggle as they tick.

Use :func:`apply_theme` once, right after the ``QApplication`` exists.
"""

from __future__ import annotations

import math
from functools import cache

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontDatabase, QIcon, QPalette
from PySide6.QtWidgets import QApplication

import resources

#: The icons folder of the ``resources`` package (found by ``importlib.resources``,
#: so an installed console has them wherever it is started from).
ICONS = resources.path("icons")

# Surfaces, darkest to lightest.
BG = "#0f141a"  # window background
SURFACE = "#151b23"  # panels, tables
SURFACE_ALT = "#19212b"  # alternate table rows
RAISED = "#1f2833"  # headers, buttons, inputs
HOVER = "#273241"
BORDER = "#2a3441"
SELECTION = "#1f3a5a"

TEXT = "#d7dee7"
TEXT_DIM = "#8592a3"
TEXT_FAINT = "#5b6776"
ACCENT = "#4ea1ff"

GAIN = "#26a69a"  # teal-green: readable for red/green colour-blind traders
LOSS = "#ef5350"
AMBER = "#ffb300"
BUY = "#3d8bfd"  # TWS convention: buy blue, sell red
SELL = "#ef5350"
STOP_RED = "#c62828"
STOP_RED_HOT = "#e53935"

#: Row tints (translucent so selection and alternate rows still show through).
EXTERNAL_TINT = QColor(171, 130, 255, 34)  # positions/orders the console did not originate
# Amber, a warning: red would read as a losing position.
BREAK_TINT = QColor(255, 179, 0, 38)  # reconciliation break
DONE_TINT = QColor(255, 255, 255, 8)  # orders that just finished, about to leave the grid
GROUP_TINT = QColor(78, 161, 255, 26)  # strategy rows (totals) of the grouped positions grid

#: Per-strategy line colours for the P&L chart (Okabe-Ito inspired, lifted for dark bg).
SERIES_COLOURS = (
    "#56b4e9",  # sky blue
    "#e69f00",  # orange
    "#cc79a7",  # reddish purple
    "#f0e442",  # yellow
    "#009e73",  # bluish green
    "#d55e00",  # vermillion
    "#a6b1e1",  # lavender
    "#bfbfbf",  # grey
)

#: Utilization bands: green below ``WARN_AT``, amber below ``BREACH_AT``, red above.
WARN_AT = 0.70
BREACH_AT = 0.90

#: Font families tried in order; the first installed one wins.
UI_FAMILIES = ("Inter", "Segoe UI", "SF Pro Text", "Helvetica Neue", "Noto Sans", "DejaVu Sans")
MONO_FAMILIES = (
    "JetBrains Mono",
    "Cascadia Mono",
    "SF Mono",
    "Menlo",
    "Consolas",
    "Roboto Mono",
    "Noto Sans Mono",
    "DejaVu Sans Mono",
)
UI_POINT_SIZE = 10
NUMBER_POINT_SIZE = 10


def _available(families: tuple[str, ...]) -> list[str]:
    installed = set(QFontDatabase.families())
    found = [f for f in families if f in installed]
    return found or list(families)


@cache
def ui_font() -> QFont:
    """The proportional font for labels, headers and text cells."""
    font = QFont()
    font.setFamilies(_available(UI_FAMILIES))
    font.setPointSize(UI_POINT_SIZE)
    return font


@cache
def number_font() -> QFont:
    """A monospace font (tabular figures) for prices, quantities and money."""
    font = QFont()
    font.setFamilies(_available(MONO_FAMILIES))
    font.setStyleHint(QFont.StyleHint.Monospace)
    font.setFixedPitch(True)
    font.setPointSize(NUMBER_POINT_SIZE)
    return font


def mono_family() -> str:
    """The monospace family chosen for numbers (for style sheets)."""
    return number_font().families()[0]


@cache
def colour(name_or_hex: str) -> QColor:
    """A cached ``QColor`` for a hex string (models return colours for every cell)."""
    return QColor(name_or_hex)


def pnl_colour(value: float | None) -> QColor | None:
    """Gain green, loss red, nothing for zero or unknown."""
    if value is None or not math.isfinite(value) or value == 0:
        return None
    return colour(GAIN) if value > 0 else colour(LOSS)


def side_colour(side: str | None) -> QColor | None:
    """Blue for buys (BUY/BOT), red for sells (SELL/SLD/SSHORT)."""
    if not side:
        return None
    side = side.upper()
    if side in ("BUY", "BOT"):
        return colour(BUY)
    if side in ("SELL", "SLD", "SSHORT"):
        return colour(SELL)
    return None


def utilization_band(utilization: float) -> str:
    """``"ok"`` below 70 %, ``"warn"`` below 90 %, ``"breach"`` at or above 90 %."""
    if utilization < WARN_AT:
        return "ok"
    if utilization < BREACH_AT:
        return "warn"
    return "breach"


BAND_COLOURS = {"ok": GAIN, "warn": AMBER, "breach": LOSS}


def utilization_colour(utilization: float) -> QColor:
    """The bar colour for a utilization (see :func:`utilization_band`)."""
    return colour(BAND_COLOURS[utilization_band(utilization)])


TRADING_STATE_COLOURS = {"ACTIVE": GAIN, "REDUCING": AMBER, "HALTED": LOSS}


def icon(name: str) -> QIcon:
    """A scalable icon from ``resources/icons/<name>.svg`` (crisp at any DPI).

    Raises ``FileNotFoundError`` for an icon the package lacks: a blank button is
    worse than a clear error at start-up.
    """
    return QIcon(str(resources.path(f"icons/{name}.svg")))


def style_sheet() -> str:
    """``resources/dark.qss`` with the chosen monospace family filled in."""
    text = resources.read_text(resources.STYLE_SHEET)
    return text.replace("@MONO@", mono_family())


def palette() -> QPalette:
    """A dark ``QPalette`` matching the style sheet (for widgets the sheet does not reach)."""
    pal = QPalette()
    role = QPalette.ColorRole
    for r, c in (
        (role.Window, BG),
        (role.WindowText, TEXT),
        (role.Base, SURFACE),
        (role.AlternateBase, SURFACE_ALT),
        (role.ToolTipBase, RAISED),
        (role.ToolTipText, TEXT),
        (role.PlaceholderText, TEXT_FAINT),
        (role.Text, TEXT),
        (role.Button, RAISED),
        (role.ButtonText, TEXT),
        (role.BrightText, "#ffffff"),
        (role.Highlight, SELECTION),
        (role.HighlightedText, "#ffffff"),
        (role.Link, ACCENT),
        (role.Mid, BORDER),
        (role.Dark, BG),
        (role.Light, HOVER),
    ):
        pal.setColor(r, QColor(c))
    for r in (role.Text, role.WindowText, role.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, r, QColor(TEXT_FAINT))
    return pal


def configure_pyqtgraph() -> None:
    """Global pyqtgraph options matching the theme (call before creating plots)."""
    import pyqtgraph as pg

    pg.setConfigOptions(background=SURFACE, foreground=TEXT_DIM, antialias=True)


def apply_theme(app: QApplication) -> None:
    """Apply the dark theme to ``app``: Fusion style, palette, fonts, style sheet, icon."""
    app.setStyle("Fusion")
    app.setPalette(palette())
    app.setFont(ui_font())
    app.setStyleSheet(style_sheet())
    app.setWindowIcon(icon("app"))
    app.setAttribute(Qt.ApplicationAttribute.AA_DontShowIconsInMenus, False)
    configure_pyqtgraph()
