"""Output files written whole or not at all, with normal permissions, checked before a run.

A result file is written to a temporary name beside its target and renamed over it, so a
crash or a signal never leaves a half-written file; the temporary is removed on any exception
(``KeyboardInterrupt`` included: the CLI turns SIGTERM into one). ``mkstemp``/``mkdtemp``
create 0600/0700 entries; :func:`publish_mode` gives them the mode a plain ``open`` would
(0666/0777 less the umask) before they appear under the real name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Sequence


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish_mode(path: str | Path) -> None:
    """Give ``path`` (and, for a directory, the files in it) the default mode under the umask."""
    mask = _umask()
    p = Path(path)
    if p.is_dir():
        os.chmod(p, 0o777 & ~mask)
        for f in p.rglob("*"):
            os.chmod(f, (0o777 if f.is_dir() else 0o666) & ~mask)
    else:
        os.chmod(p, 0o666 & ~mask)


def check_destination(path: Path, suffixes: Sequence[str] | None, flag: str) -> None:
    """Refuse an output path before any work: wrong suffix, an existing directory, or a parent
    that is a file or cannot be created (``ValueError`` naming ``flag`` and the path)."""
    if suffixes and path.suffix.lower() not in suffixes:
        raise ValueError(f"{flag} {path}: must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise ValueError(f"{flag} {path}: is a directory")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{flag} {path}: {parent} is a file, not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ValueError(f"{flag} {path}: {parent} is not writable")
            break


def write_file_atomic(path: Path, write: Callable[[str], None], suffix: str = "") -> None:
    """``write(tmp_name)`` then rename over ``path``; nothing is left behind on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        publish_mode(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_dir_atomic(path: Path, fill: Callable[[Path], None]) -> Path:
    """``fill(tmp_dir)`` then swap it in for ``path`` (replacing an old one whole)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
    try:
        fill(tmp)
        publish_mode(tmp)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
