"""Finding report inputs on disk: files, folders, mbox files and Maildir folders."""

from __future__ import annotations

import mailbox
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPORT_SUFFIXES = (".json", ".json.gz", ".gz", ".eml", ".msg", ".mbox")


class SourceError(Exception):
    """A path the user named cannot be read."""


@dataclass(frozen=True, slots=True)
class InputRef:
    """One input: a file, or one message of a mailbox. Plain strings: a 100,000-file
    import holds 100,000 of these."""

    path: str
    key: str | None = None
    """The message key inside an mbox or Maildir."""

    @property
    def source(self) -> str:
        return self.path if self.key is None else f"{self.path}#{self.key}"


def _is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


def _is_mbox(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(5) == b"From "


def _open_mailbox(path: Path) -> mailbox.Mailbox[mailbox.Message]:
    if path.is_dir():
        return mailbox.Maildir(path, factory=None, create=False)
    return mailbox.mbox(path, factory=None, create=False)


def _mailbox_refs(path: Path) -> Iterator[InputRef]:
    box = _open_mailbox(path)
    try:
        keys = sorted(box.keys())
    finally:
        box.close()
    for key in keys:
        yield InputRef(str(path), key)


def _walk(folder: Path) -> Iterator[Path | tuple[str, Path]]:
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        if _is_maildir(here):
            yield ("maildir", here)
            dirs[:] = [d for d in dirs if d not in ("cur", "new", "tmp")]
        dirs.sort()
        for name in sorted(files):
            if name.startswith(".") or not name.lower().endswith(REPORT_SUFFIXES):
                continue
            yield here / name


def find_inputs(paths: list[Path]) -> list[InputRef]:
    """Every input under the given paths, in a stable order.

    Named files are taken whatever their name; inside folders only files ending in
    .json, .json.gz, .gz, .eml, .msg or .mbox, and Maildir folders, are taken.
    """
    refs: list[InputRef] = []
    for path in paths:
        if not path.exists():
            raise SourceError(f"{path}: no such file or folder")
        if path.is_dir():
            if _is_maildir(path):
                refs.extend(_mailbox_refs(path))
                continue
            for found in _walk(path):
                if isinstance(found, tuple):
                    refs.extend(_mailbox_refs(found[1]))
                elif found.suffix.lower() == ".mbox" and _is_mbox(found):
                    refs.extend(_mailbox_refs(found))
                else:
                    refs.append(InputRef(str(found)))
        elif _is_mbox(path):
            refs.extend(_mailbox_refs(path))
        else:
            refs.append(InputRef(str(path)))
    return refs


def read_inputs(refs: Iterable[InputRef]) -> Iterator[tuple[InputRef, bytes | OSError]]:
    """The bytes of each input (or why it could not be read), keeping one mailbox open
    while its messages are read."""
    box: mailbox.Mailbox[mailbox.Message] | None = None
    box_path: str | None = None
    try:
        for ref in refs:
            try:
                if ref.key is None:
                    with open(ref.path, "rb") as fh:  # noqa: PTH123 (no Path per file: hot path)
                        data = fh.read()
                    yield ref, data
                    continue
                if box is None or box_path != ref.path:
                    if box is not None:
                        box.close()
                    box, box_path = None, ref.path
                    box = _open_mailbox(Path(ref.path))
                data = box.get_bytes(ref.key)
            except (OSError, KeyError) as exc:
                yield ref, exc if isinstance(exc, OSError) else OSError(f"message {exc} is gone")
                continue
            yield ref, data
    finally:
        if box is not None:
            box.close()
