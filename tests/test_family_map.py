"""CONTRIBUTING.md's family map names every public name and only paths that exist."""

from __future__ import annotations

import re
from pathlib import Path

import gradfast

ROOT = Path(__file__).resolve().parent.parent


def _rows() -> dict[str, list[str]]:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    table = text.split("## The family map", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_every_public_name_has_a_row():
    assert sorted(_rows()) == sorted(gradfast.__all__)


def test_every_path_of_the_map_exists():
    missing = [
        (name, path)
        for name, cells in _rows().items()
        for cell in cells
        for path in re.findall(r"`([\w/.]+\.(?:rs|py|pyi))`", cell)
        if not (ROOT / path).exists()
    ]
    assert missing == []
