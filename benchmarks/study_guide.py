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


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- study:{name} -->", f"<!-- /study:{name} -->"


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the lines between ``<!-- study:<name> -->`` and ``<!-- /study:<name> -->``
    (both present) replaced by ``body``."""
    start, end = _markers(name)
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def recipes_block(recipes: list[Path], repo: Path) -> str:
    """The commands that train the study's recipes (a bash block the docs tests parse)."""
    lines = [f"LRR_DATA=../shared/data lightning-rnn-reg fit --config "
             f"{path.relative_to(repo).as_posix()}" for path in sorted(recipes)]
    return "```bash\n" + "\n".join(lines) + "\n```"


def refresh(guide: Path, out: Path, images: Path, tasks: tuple[str, ...],
            recipes: list[Path] | None = None, repo: Path | None = None) -> str:
    """Replace every task's block of ``guide`` with its table and plots, and (``recipes``
    given) the ``recipes`` block with their commands; returns the text."""
    text = guide.read_text()
    for name in (*tasks, *(["recipes"] if recipes is not None else [])):
        start, end = _markers(name)
        if start not in text or end not in text:  # checked before any file is written
            raise ValueError(f"{guide}: no {start} ... {end} block")
    for task in tasks:
        text = replace_block(text, task, task_block(out, task, images, guide.parent))
    if recipes is not None:
        text = replace_block(text, "recipes", recipes_block(recipes, repo or guide.parent))
    guide.write_text(text)
    return text
