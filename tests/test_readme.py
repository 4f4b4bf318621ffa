"""Every Python example in README.md runs, so the front door stays true."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks
    for index, block in enumerate(blocks):
        exec(compile(block, f"README.md block {index}", "exec"), {})


def test_readme_names_the_test_command_ci_runs():
    text = README.read_text()
    assert "<!-- test-command -->" in text and "python -m pytest" in text
