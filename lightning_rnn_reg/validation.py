"""The one argument check the package shares: sizes and counts that must be integers >= 1.

Every constructor that takes a size (``hidden_size``, ``batch_size``, ``bptt``, ...) checks it
here, so the message is the same everywhere: ``"<where>: <name> must be an integer >= 1, got
<value>"``. ``bool`` is refused although it is an ``int`` subclass (``True`` as a size is a
mistake, not a 1).
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_positive_int", "check_positive_ints"]


def check_positive_int(where: str, name: str, value: Any, *, allow_none: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is an ``int`` (not ``bool``) ``>= 1``; ``None``
    passes when ``allow_none``. ``where`` names the caller (a class or function)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        prefix = f"{where}: " if where else ""
        suffix = " or None" if allow_none else ""
        raise ValueError(f"{prefix}{name} must be an integer >= 1{suffix}, got {value!r}")


def check_positive_ints(where: str, **values: Any) -> None:
    """:func:`check_positive_int` for each ``name=value`` given, in order."""
    for name, value in values.items():
        check_positive_int(where, name, value)
