"""Files the console writes: never over an existing file unless asked, never through a symlink,
readable only by the owner unless the data is public, and no cell a spreadsheet would run."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

PRIVATE = 0o600
"""Register data: devices, hospitals, events, rejected messages' bytes."""
PUBLIC = 0o644
"""Data meant to be handed out: public keys, signed checkpoints."""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet takes as the start of a formula (OWASP's CSV injection list)."""


class OutputRefused(Exception):
    """The output path exists, or is a symlink; the message says what to do."""


def csv_text(value: str) -> str:
    """A CSV cell a spreadsheet shows as text: a leading apostrophe before a formula-like start."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def check_output(path: Path, force: bool) -> None:
    if path.is_symlink():
        raise OutputRefused(f"{path} is a symbolic link: refusing to write through it")
    if path.exists() and not path.is_file():
        raise OutputRefused(f"{path} exists and is not a regular file")
    if path.exists() and not force:
        raise OutputRefused(f"{path} already exists: add --force to overwrite it")


def open_new(path: Path, force: bool, mode: int = PRIVATE, binary: bool = False) -> IO[Any]:
    """Opens `path` for writing with `mode`; an existing file only with `force`, a symlink never."""
    check_output(path, force)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_TRUNC if force else os.O_EXCL)
    try:
        descriptor = os.open(path, flags, mode)
    except FileExistsError:
        raise OutputRefused(f"{path} already exists: add --force to overwrite it") from None
    except OSError as error:
        raise OutputRefused(f"cannot write {path}: {error.strerror}") from None
    os.fchmod(descriptor, mode)
    if binary:
        return os.fdopen(descriptor, "wb")
    return os.fdopen(descriptor, "w", encoding="utf-8", newline="")


@contextlib.contextmanager
def written(path: Path, force: bool, mode: int = PRIVATE, binary: bool = False) -> Iterator[IO[Any]]:
    with open_new(path, force, mode, binary) as handle:
        yield handle


def private_directory(path: Path) -> None:
    """A folder for register data: created 0700 when new; never a symlink."""
    if path.is_symlink():
        raise OutputRefused(f"{path} is a symbolic link: refusing to write through it")
    if path.exists() and not path.is_dir():
        raise OutputRefused(f"{path} exists and is not a folder")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def private_sqlite_file(path: Path) -> None:
    """Creates an SQLite database file 0600 before SQLite does (its -wal and -shm files follow its mode)."""
    with contextlib.suppress(FileExistsError):
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE))
