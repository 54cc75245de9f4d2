"""The export folder, written without ever leaving it.

Every step goes through directory file descriptors opened with O_NOFOLLOW from the
folder itself: a symlink planted in DIR (at a unit's or a course's place, or at a
file's) is never followed, never written through and never removed. Files are
written under a temporary name and renamed into place; what the export made is
listed in its manifest (``.intake-export.json``), and only what is listed there is
ever removed.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from intake.kernel.errors import ConfigError

MANIFEST = ".intake-export.json"
WORK = ".intake-export-work"  # unpacking happens here: same file system, so files are linked, not copied
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class NotOurs(Exception):
    """A path the export would use is taken by something it must not follow or replace."""


def open_root(target: Path) -> int:
    """The export folder, created if missing (its parent must exist); one line for the
    operator when it cannot be used."""
    target = Path(target)
    try:
        target.mkdir(exist_ok=True)
        return os.open(target, DIR_FLAGS & ~os.O_NOFOLLOW)  # DIR itself is the operator's choice
    except FileNotFoundError:
        raise ConfigError(f"export: the parent folder of {target} does not exist") from None
    except NotADirectoryError:
        raise ConfigError(f"export: {target} exists and is not a folder") from None
    except FileExistsError:
        raise ConfigError(f"export: {target} exists and is not a folder") from None
    except PermissionError:
        raise ConfigError(f"export: no permission to write in {target}") from None
    except OSError as err:  # a read-only file system, say
        raise ConfigError(f"export: cannot use {target} ({err.strerror or err}); choose a folder this user may "
                          "write to") from None


def can_write(root: int, target: Path) -> None:
    """DIR takes a new folder (an existing DIR may be read-only, or another user's): said
    before anything is unpacked, in one line."""
    probe = f"{WORK}-probe-{uuid.uuid4().hex[:8]}"
    try:
        os.mkdir(probe, dir_fd=root)
        os.rmdir(probe, dir_fd=root)
    except OSError as err:
        raise ConfigError(f"export: cannot write in {target} ({err.strerror or err}); choose a folder this user "
                          "may write to") from None


def lock(root: int, target: Path) -> None:
    """One export into a folder at a time (released when ``root`` is closed)."""
    try:
        fcntl.flock(root, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ConfigError(f"export: another export into {target} is running; try again when it has finished") from None


@contextmanager
def subdir(parent: int, parts: tuple[str, ...], create: bool = True) -> Iterator[int]:
    """The folder ``parts`` below ``parent``, each step a real folder (never a symlink)."""
    fd = os.dup(parent)
    try:
        for part in parts:
            if create:
                try:
                    os.mkdir(part, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            except OSError as err:
                if err.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise NotOurs(part) from None
                raise
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def regular(dir_fd: int, name: str) -> os.stat_result | None:
    """The file's status if ``name`` is a plain file there (not a symlink), else None."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return info if stat.S_ISREG(info.st_mode) else None


def sha256_of(path: Path | str, dir_fd: int | None = None) -> str:
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def place(dir_fd: int, name: str, source: Path, scratch: Path) -> None:
    """``source`` as ``name`` in the folder, renamed into place (a symlink at ``name`` is
    replaced, never written through). Hard-linked when it is the scratch folder's own
    copy (same file system, nothing else links to it); copied otherwise: a file the
    daemon keeps (a fetched share's file, linked into the package) must never share its
    bytes with a copy that an expert may edit."""
    temporary = f".{uuid.uuid4().hex}.tmp"
    try:
        if scratch not in source.parents or os.stat(source, follow_symlinks=False).st_nlink != 1:
            raise OSError("not the scratch folder's own file")
        os.link(source, temporary, dst_dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        out = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                      dir_fd=dir_fd)
        with os.fdopen(out, "wb") as target, open(source, "rb") as data:
            shutil.copyfileobj(data, target, 1 << 20)
    try:
        os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        os.unlink(temporary, dir_fd=dir_fd)
        raise


def write_bytes(dir_fd: int, name: str, data: bytes) -> None:
    temporary = f".{uuid.uuid4().hex}.tmp"
    out = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                  dir_fd=dir_fd)
    with os.fdopen(out, "wb") as target:
        target.write(data)
        target.flush()
        os.fsync(target.fileno())
    os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def remove_file(dir_fd: int, name: str) -> None:
    """Unlink ``name`` if it is a plain file (a symlink in its place is someone else's)."""
    if regular(dir_fd, name) is not None:
        os.unlink(name, dir_fd=dir_fd)


def remove_empty(root: int, parts: tuple[str, ...]) -> None:
    """Remove the folders of ``parts``, deepest first, while they are empty."""
    for depth in range(len(parts), 0, -1):
        *above, last = parts[:depth]
        try:
            with subdir(root, tuple(above), create=False) as fd:
                os.rmdir(last, dir_fd=fd)
        except (OSError, NotOurs):
            return  # not empty (someone's own files), gone, or not a folder: left alone


def load_manifest(root: int) -> dict[str, Any]:
    if regular(root, MANIFEST) is None:
        return {"projects": {}, "files": []}
    try:
        fd = os.open(MANIFEST, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=root)
        with os.fdopen(fd, "rb") as fh:
            data = json.loads(fh.read(64 << 20))
        if isinstance(data.get("projects"), dict) and isinstance(data.get("files"), list):
            data["projects"] = {key: entry for key, entry in data["projects"].items() if _inside(entry)}
            return data
    except (OSError, ValueError, AttributeError):
        pass
    return {"projects": {}, "files": []}


def _inside(entry: Any) -> bool:
    """An entry whose folder and file names are each one plain name below DIR: only what
    stays inside DIR is ever looked at or removed, whoever edited the manifest."""
    try:
        folder, files = entry["folder"], entry["files"]
        return (isinstance(entry["unit"], str) and isinstance(folder, list) and len(folder) == 2
                and isinstance(files, dict) and all(_plain(name) for name in [*folder, *files])
                and all({"kind", "size", "mtime_ns"} <= set(meta) for meta in files.values()))
    except (KeyError, TypeError):
        return False


def _plain(name: object) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\0" not in name


def save_manifest(root: int, manifest: dict[str, Any]) -> None:
    write_bytes(root, MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8"))


@contextmanager
def workdir(root: int, target: Path) -> Iterator[Path]:
    """A scratch folder inside DIR for unpacking, removed afterwards."""
    name = f"{WORK}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.mkdir(name, dir_fd=root)
    try:
        yield Path(target) / name
    finally:
        shutil.rmtree(name, dir_fd=root, ignore_errors=True)


def sweep_work(root: int) -> None:
    """Scratch folders left by an export that was killed (none runs now: the lock)."""
    with os.scandir(root) as entries:
        stale = [e.name for e in entries if e.name.startswith(WORK) and e.is_dir(follow_symlinks=False)]
    for name in stale:
        shutil.rmtree(name, dir_fd=root, ignore_errors=True)
