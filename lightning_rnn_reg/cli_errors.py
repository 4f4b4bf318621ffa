"""Configuration errors of the command line, told in a few lines.

A bad class name, rate, site or data folder reaches the user through jsonargparse and
LightningCLI as a chain of exceptions whose messages repeat each other and end in a dump of
the whole configuration. :func:`short_error` keeps the sentences that say what is wrong,
outermost first, so the last line is the innermost cause, the one that says what to do; a
class path that cannot be imported is explained by importing it (which module, and why).
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml

__all__ = ["ResumeError", "short_error"]

#: Lines of jsonargparse's messages that restate the configuration, not the cause.
_NOISE = re.compile(
    r"^(Given value|Subtypes:|Errors:|Expected a <class |Does not validate against|"
    r"Parser key \"[^\"]*\":\s*$|Problem with given class_path|Not a valid subclass|"
    r"Validation failed|usage:|Traceback)")
_MAX_LINES = 5


class ResumeError(ValueError):
    """``--ckpt_path last`` found no checkpoint to resume from."""


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and its causes, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        cause = current.__cause__
        if cause is None and not current.__suppress_context__:
            cause = current.__context__
        current = cause


def _suggestion(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, [c for c in choices if not c.startswith("_")], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _sentences(error: BaseException) -> list[str]:
    lines = []
    for raw in str(error).splitlines():
        line = re.sub(r"^- ", "", raw.strip()).strip()  # a bullet of jsonargparse's lists
        if line and not _NOISE.match(line):
            lines.append(line)
    name, obj = getattr(error, "name", None), getattr(error, "obj", None)
    if isinstance(error, AttributeError) and isinstance(name, str) and obj is not None \
            and lines and "Did you mean" not in lines[-1]:
        # the interpreter adds its "Did you mean" only when it prints a traceback
        lines[-1] = lines[-1].rstrip(".") + "." + _suggestion(name, dir(obj))
    return lines


def _class_paths(argv: Sequence[str]) -> list[str]:
    """Class paths given on the command line (``--model a.B``, ``--data=a.B``) or as the
    model's / data's ``class_path`` in ``--config`` files (nested ones, e.g. regularizers,
    explain themselves)."""
    paths: list[str] = []
    words = list(argv)
    for index, word in enumerate(words):
        key, eq, value = word.partition("=")
        if not eq:
            value = words[index + 1] if index + 1 < len(words) else ""
        if key in ("--model", "--data") and "." in value and not value.endswith((".yaml",
                                                                                ".yml")):
            paths.append(value)
        if key == "--config" and value and Path(value).is_file():
            paths += _config_class_paths(Path(value))
    return paths


def _config_class_paths(path: Path) -> list[str]:
    try:
        tree = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return []
    if not isinstance(tree, dict):
        return []
    found = []
    for key in ("model", "data"):
        node = tree.get(key)
        value = node.get("class_path") if isinstance(node, dict) else node
        if isinstance(value, str) and "." in value:
            found.append(value)
    return found


def _import_problem(class_path: str) -> str | None:
    """Why ``class_path`` cannot be imported, or ``None`` if it can (or is not a path)."""
    module, _, name = class_path.rpartition(".")
    if not module:
        return None
    try:
        imported = importlib.import_module(module)
    except Exception as error:  # any failure while importing the user's module
        return (f"{class_path!r}: module {module!r} failed to import: "
                f"{type(error).__name__}: {error}")
    if not hasattr(imported, name):
        return (f"{class_path!r}: module {module!r} has no attribute {name!r}."
                + _suggestion(name, dir(imported)))
    return None


def _is_ours(error: BaseException) -> bool:
    from lightning_rnn_reg.tasks.checkpoint import CheckpointError

    return isinstance(error, (CheckpointError, ResumeError))


def _config_file(argv: Sequence[str]) -> str | None:
    """The one ``--config`` file of ``argv`` (``None`` for none or several)."""
    words = list(argv)
    files = [words[i + 1] for i, word in enumerate(words[:-1]) if word == "--config"]
    files += [word.partition("=")[2] for word in words if word.startswith("--config=")]
    return files[0] if len(files) == 1 else None


def short_error(error: BaseException, argv: Sequence[str] = ()) -> str:
    """The few lines the CLI prints for a configuration ``error`` (ends with a newline)."""
    lines: list[str] = []
    # our own errors say it all; others are explained by their chain of causes
    chain = [error] if _is_ours(error) else list(_chain(error))
    for cause in chain:
        for line in _sentences(cause):
            if line not in lines:
                lines.append(line)
    config = _config_file(argv)
    if config is not None:  # jsonargparse parses the file's text, so it names no file
        lines = [line.replace('"<unicode string>"', config) for line in lines]
    for class_path in _class_paths(argv):
        problem = _import_problem(class_path)
        if problem is not None and problem not in lines:
            lines.append(problem)
    # a line that another, fuller line repeats adds nothing
    lines = [line for line in lines if not any(line in other and line != other
                                               for other in lines)]
    if not lines:
        lines = [type(error).__name__]
    head = "lightning-rnn-reg: error (full traceback: --debug or LRR_DEBUG=1):"
    return "\n".join([head, *lines[-_MAX_LINES:]]) + "\n"
