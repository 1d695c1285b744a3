"""The console's package data: style sheet, icons, config templates, desktop entry.

``resources/`` is a package so that :mod:`importlib.resources` finds these files
wherever the console runs: in a checkout, in an editable install and in an installed
wheel (``pipx install .``), whatever the working directory. Nothing reads them by a
path relative to a checkout.

Qt and the file system want real paths; :func:`path` gives one for any resource
(the file itself when the package lies on disk, as it does in every normal install).
"""

from __future__ import annotations

import atexit
import contextlib
from functools import cache
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = ["CONFIG_TEMPLATE", "DESKTOP_ENTRY", "STYLE_SHEET", "path", "read_text", "traversable"]

#: The commented template a user's ``config.toml`` is created from.
CONFIG_TEMPLATE = "default-config.toml"
#: The dark theme's Qt style sheet.
STYLE_SHEET = "dark.qss"
#: The freedesktop.org desktop entry (``ibconsole --install-desktop-entry``).
DESKTOP_ENTRY = "ibconsole.desktop"

# Files extracted from a zipped install live until the process ends.
_extracted = contextlib.ExitStack()
atexit.register(_extracted.close)


def traversable(name: str) -> Traversable:
    """The resource ``name`` (``"dark.qss"``, ``"icons/app.svg"``) as a ``Traversable``."""
    node = files(__name__)
    for part in name.split("/"):
        node = node / part
    return node


@cache
def path(name: str) -> Path:
    """A file-system path to the resource ``name``, valid until the process ends.

    Raises ``FileNotFoundError`` naming the resource if the package lacks it (a broken
    install), rather than letting Qt silently load nothing.
    """
    node = traversable(name)
    if not node.is_file() and not node.is_dir():
        raise FileNotFoundError(f"resource {name!r} is missing from {files(__name__)}")
    return _extracted.enter_context(as_file(node))


def read_text(name: str) -> str:
    """The text of the resource ``name`` (UTF-8)."""
    return traversable(name).read_text(encoding="utf-8")
