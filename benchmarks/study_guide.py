"""Refresh the study's tables and plots in ``docs/guide.md`` from the study's report.

Between the markers ``<!-- study:<task> -->`` and ``<!-- /study:<task> -->`` the guide holds
``<out>/<task>.md``'s table and notes (written by ``study.py --report-only``); the plots it
names are copied to ``docs/img/study/`` (MkDocs serves only ``docs/``) and linked from there.
The prose around the markers is written by hand from these tables.

Run through ``python benchmarks/study.py --report-only --publish``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

IMAGE = re.compile(r"!\[([^\]]*)\]\(plots/([^)]+)\)")


def task_block(out: Path, task: str, images: Path, page_dir: Path) -> str:
    """``<out>/<task>.md`` without its title, its plots copied under ``images`` and linked
    relative to ``page_dir`` (the guide's folder)."""
    lines = (out / f"{task}.md").read_text().splitlines()
    body = [line for line in lines if not line.startswith("### ")]
    for match in IMAGE.finditer("\n".join(body)):
        target = images / match.group(2)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "plots" / match.group(2), target)
    rel = Path(os.path.relpath(images, page_dir)).as_posix()
    return IMAGE.sub(lambda m: f"![{m.group(1)}]({rel}/{m.group(2)})", "\n".join(body)).strip()


def refresh(guide: Path, out: Path, images: Path, tasks: tuple[str, ...]) -> str:
    """Replace every task's block of ``guide`` with its table and plots; returns the text."""
    text = guide.read_text()
    for task in tasks:
        start, end = f"<!-- study:{task} -->", f"<!-- /study:{task} -->"
        if start not in text or end not in text:
            raise ValueError(f"{guide}: no {start} ... {end} block")
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{task_block(out, task, images, guide.parent)}\n{end}{tail}"
    guide.write_text(text)
    return text

