"""The documentation cannot rot: every Python example in docs/*.md runs, every
``lightning-rnn-reg`` command in them parses, and every page is in the MkDocs navigation.

A page's ```python blocks run in order in one namespace (a page reads like a notebook). A
block preceded by ``<!-- no-run: reason -->`` is skipped (it needs a GPU, a cluster or the
benchmark data); there are few, and the reason is stated in the page source.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from lightning_rnn_reg.cli import main
from lightning_rnn_reg.report.command import report_parser

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))
_BLOCK = re.compile(r"(<!-- no-run: [^>]*-->\s*\n)?```(\w+)\n(.*?)```", re.S)
_ENV = re.compile(r"^(\w+=\S+\s+)+")


def _blocks(page: Path, language: str) -> list[tuple[str, bool]]:
    """``(code, runnable)`` of every block of ``language`` in ``page``."""
    return [(code, not skip) for skip, lang, code in _BLOCK.findall(page.read_text())
            if lang == language]


def _arguments(words: list[str]) -> list[str] | None:
    """The arguments of the ``lightning-rnn-reg`` (or ``-m lightning_rnn_reg``) command in
    ``words`` (it may follow a launcher: ``srun``, ``torchrun ...``), else ``None``."""
    for index, word in enumerate(words):
        if word == "lightning-rnn-reg" or (
                word == "lightning_rnn_reg" and index and words[index - 1] == "-m"):
            return words[index + 1:]
    return None


def _commands(page: Path) -> list[list[str]]:
    """The ``lightning-rnn-reg`` command lines of the page's bash blocks (continuations
    joined, leading ``VAR=value`` assignments and ``#`` comments dropped)."""
    commands = []
    for code, _ in _blocks(page, "bash"):
        for line in code.replace("\\\n", " ").splitlines():
            arguments = _arguments(shlex.split(_ENV.sub("", line.strip()), comments=True))
            if arguments:
                commands.append(arguments)
    return commands


def test_docs_have_pages():
    assert len(PAGES) >= 8


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_python_examples_of_the_page_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for index, (code, runnable) in enumerate(_blocks(page, "python")):
        if runnable:
            exec(compile(code, f"{page.name} python block {index}", "exec"), namespace)


def test_skipped_examples_are_rare():
    blocks = [runnable for page in PAGES for _, runnable in _blocks(page, "python")]
    assert blocks.count(False) <= max(2, len(blocks) // 10)


_COMMANDS = [(page.stem, words) for page in PAGES for words in _commands(page)]


@pytest.mark.parametrize(("page", "words"), [c for c in _COMMANDS if c[1][0] != "report"],
                         ids=lambda v: v if isinstance(v, str) else " ".join(v)[:60])
def test_trainer_commands_of_the_docs_parse(page, words, monkeypatch, capsys):
    monkeypatch.chdir(REPO)  # the docs' config paths are relative to the repository root
    monkeypatch.setattr(sys, "argv", ["lightning-rnn-reg"])  # as from the shell
    with pytest.raises(SystemExit) as exit_info:
        main([*words, "--print_config"])
    assert exit_info.value.code in (0, None), capsys.readouterr().err[-2000:]


@pytest.mark.parametrize(("page", "words"), [c for c in _COMMANDS if c[1][0] == "report"],
                         ids=lambda v: v if isinstance(v, str) else " ".join(v)[:60])
def test_report_commands_of_the_docs_parse(page, words):
    assert report_parser().parse_args(words[1:]).out


def test_every_page_is_in_the_navigation_and_back():
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    listed = {next(iter(item.values())) for item in config["nav"]}
    assert listed == {page.name for page in PAGES}
