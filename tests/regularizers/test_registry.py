"""Every concrete regularizer (see ``harness.py`` for the discovery rule) is exported, has its
test module, its docs section, its API entry, its README row and its entry in the harness
table, so a new regularizer cannot be half added.

The rules, for a class ``Name`` defined in ``lightning_rnn_reg/regularizers/<module>.py``:

* test module: ``tests/regularizers/test_<module>.py`` or ``test_<snake_name>.py`` exists and
  mentions ``Name``;
* docs section: a heading of ``docs/regularizers.md`` names ``Name`` (as a whole word; one
  heading may name two classes);
* API entry: a line ``::: lightning_rnn_reg.Name`` in ``docs/api.md``;
* README row: a row of the table under ``## The regularizers`` in ``README.md`` whose first
  cell is ```Name``` or ```Name(...)```;
* harness entry: ``harness.CASES["Name"]``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from harness import CASES, all_subclasses, discover, is_concrete

import lightning_rnn_reg as lrr
from lightning_rnn_reg import regularizers

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests" / "regularizers"
CLASSES = discover()


def _ids(cls: type) -> str:
    return cls.__name__


def snake(name: str) -> str:
    """``WeightDrop`` -> ``weight_drop``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def readme_table_names() -> set[str]:
    """The class names in the first column of the README's regularizer table."""
    text = (REPO / "README.md").read_text()
    match = re.search(r"^## The regularizers\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, "README.md has no '## The regularizers' section"
    names = set()
    for line in match.group(1).splitlines():
        cell = re.match(r"\|\s*`(\w+)(\(.*\))?`\s*\|", line)
        if cell:
            names.add(cell.group(1))
    return names


def test_registry_finds_the_regularizers():
    assert CLASSES, "no concrete Regularizer subclass discovered"
    assert lrr.Regularizer not in CLASSES
    assert all(issubclass(cls, lrr.Regularizer) for cls in CLASSES)


@pytest.mark.parametrize("cls", CLASSES, ids=_ids)
def test_has_a_harness_entry(cls):
    assert cls.__name__ in CASES, (
        f"{cls.__name__} has no entry in tests/regularizers/harness.py CASES: add how to "
        "build it with a rate and how to call it")


@pytest.mark.parametrize("name", sorted(CASES))
def test_harness_entry_names_a_discovered_class(name):
    assert name in {cls.__name__ for cls in CLASSES}, (
        f"harness.CASES has {name!r}, which is no exported Regularizer (renamed or removed?)")


def test_every_package_regularizer_is_exported_or_a_base():
    """A class the package defines but does not export must be a base of an exported one."""
    concrete = set(CLASSES)
    for cls in all_subclasses():
        if not cls.__module__.startswith("lightning_rnn_reg.") or is_concrete(cls):
            continue
        assert any(issubclass(sub, cls) for sub in concrete), (
            f"{cls.__module__}.{cls.__name__} is neither exported from lightning_rnn_reg "
            "nor a base of an exported regularizer: export it (both __init__.py)")


@pytest.mark.parametrize("cls", CLASSES, ids=_ids)
def test_is_exported_from_the_regularizers_package(cls):
    assert cls.__name__ in regularizers.__all__
    assert getattr(regularizers, cls.__name__) is cls


@pytest.mark.parametrize("cls", CLASSES, ids=_ids)
def test_has_a_test_module(cls):
    module_file = cls.__module__.rpartition(".")[2]
    candidates = [TESTS / f"test_{module_file}.py", TESTS / f"test_{snake(cls.__name__)}.py"]
    found = [path for path in candidates if path.exists()]
    assert found, f"{cls.__name__}: none of {[str(p.relative_to(REPO)) for p in candidates]}"
    assert any(re.search(rf"\b{cls.__name__}\b", path.read_text()) for path in found), (
        f"{cls.__name__}: {[p.name for p in found]} never mentions it")


@pytest.mark.parametrize("cls", CLASSES, ids=_ids)
def test_has_a_docs_section(cls):
    headings = [line for line in (REPO / "docs" / "regularizers.md").read_text().splitlines()
                if line.startswith("#")]
    assert any(re.search(rf"\b{cls.__name__}\b", line) for line in headings), (
        f"docs/regularizers.md has no heading naming {cls.__name__}")


@pytest.mark.parametrize("cls", CLASSES, ids=_ids)
def test_has_an_api_entry(cls):
    lines = (REPO / "docs" / "api.md").read_text().splitlines()
    assert f"::: lightning_rnn_reg.{cls.__name__}" in [line.strip() for line in lines]


@pytest.mark.parametrize("cls", CLASSES, ids=_ids)
def test_has_a_readme_row(cls):
    assert cls.__name__ in readme_table_names(), (
        f"README.md's '## The regularizers' table has no row for {cls.__name__}")
