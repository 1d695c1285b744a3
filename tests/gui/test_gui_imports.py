"""The GUI speaks core's typed events and commands only (issue 12, 4): no module under
``gui/`` imports ``ib_async``."""

from __future__ import annotations

import ast
from pathlib import Path

GUI = Path(__file__).resolve().parents[2] / "gui"


def ib_async_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        found += [
            f"{path.relative_to(GUI.parent)}:{node.lineno}"
            for n in names
            if n.split(".")[0] == "ib_async"
        ]
    return found


def test_no_gui_module_imports_ib_async():
    offenders = [hit for path in sorted(GUI.rglob("*.py")) for hit in ib_async_imports(path)]
    assert offenders == []
