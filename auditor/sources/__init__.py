"""Turning the paths a user named into targets.

Files are recognised by content: every source plugin ``sniff``s the text and the first
that accepts it (lowest ``priority``) loads it. During a directory walk only files with
a known extension are read, and a file no source accepts is skipped quietly (logged
with ``-v``); a file the user named explicitly and no source accepts is an error.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from auditor.model import InputError, Origin, SourceMap, Target

log = logging.getLogger("ib_audit.sources")

SKIP_DIRS = frozenset({".git", "node_modules", ".terraform", ".hg", ".svn", "__pycache__", ".venv"})
WALK_EXTENSIONS = frozenset({".json", ".yaml", ".yml", ".template", ".tf", ".tf.json"})


@dataclass
class LoadResult:
    """What a source made of one file: targets, plus problems that did not stop it."""

    targets: list[Target] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)


class SourceError(Exception):
    """The file cannot be loaded at all; the message names the problem (with line/column)."""


class FileSource(Protocol):
    name: str  # origin kind, e.g. "json"
    priority: int  # lower sniffs first

    def sniff(self, path: Path, text: str) -> bool:
        """Cheap check whether this file is of this source's kind."""

    def load(self, path: Path, text: str, display: str) -> LoadResult:
        """Parse the file; raise SourceError for a file that cannot be read at all."""


def checked_config(
    config: dict, source_map: SourceMap, display: str, into: LoadResult, resource: str | None = None
) -> dict:
    """Type-check a canonical configuration; each wrong type is an error naming its line.

    The returned copy has wrongly typed values replaced by ``Unresolved``, so the rest
    of the configuration is still audited.
    """
    from auditor import apimodel

    checked, problems = apimodel.check_types(config)
    for pointer, message in problems:
        loc = source_map.locate(pointer)
        where = f"line {loc.span.start_line}, column {loc.span.start_column}: " if loc.span else ""
        what = f"{resource}: " if resource else ""
        into.errors.append(InputError(display, f"{where}{what}{pointer}: {message}"))
    return checked


def display_path(path: Path) -> str:
    """A path as reports show it: relative to the working directory when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def walk(root: Path, exclude: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Files of known extensions under ``root``; ``exclude`` (else ``SKIP_DIRS``) prunes."""
    for dirpath, dirnames, filenames in os.walk(root):
        if exclude is None:
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        else:
            dirnames[:] = sorted(d for d in dirnames if not _excluded(Path(dirpath, d), exclude))
        for name in sorted(filenames):
            if any(name.endswith(ext) for ext in WALK_EXTENSIONS):
                if exclude is not None and _excluded(Path(dirpath, name), exclude):
                    continue
                yield Path(dirpath, name)


def _excluded(path: Path, exclude: Callable[[Path], bool]) -> bool:
    if exclude(path):
        log.info("%s: skipped, excluded", display_path(path))
        return True
    return False


def error_target(display: str, message: str, kind: str = "file") -> Target:
    return Target(id=display, name=Path(display).name, origin=Origin(kind=kind, file=display), error=message)


def load_paths(
    paths: Sequence[str],
    sources: Sequence[FileSource],
    max_bytes: int,
    *,
    strict: bool = True,
    exclude: Callable[[Path], bool] | None = None,
    force_exclude: Callable[[Path], bool] | None = None,
) -> LoadResult:
    """Load every file under ``paths``; each named input ends as targets or as an error.

    With ``strict=False`` a named file that is not a configuration is skipped quietly,
    as in a directory walk (pre-commit passes every staged file of a type). ``exclude``
    prunes the walk; a path named explicitly is skipped only when ``force_exclude``
    says so (ruff's ``--force-exclude``).
    """
    result = LoadResult()
    for raw in paths:
        path = Path(raw)
        if force_exclude is not None and _excluded(path, force_exclude):
            continue
        if path.is_dir():
            for file in walk(path, exclude):
                _load_file(file, sources, max_bytes, explicit=False, into=result)
        elif path.exists() or path.is_symlink():
            _load_file(path, sources, max_bytes, explicit=strict, into=result)
        else:
            result.targets.append(error_target(raw, "no such file or directory"))
    return result


def _load_file(path: Path, sources: Sequence[FileSource], max_bytes: int, *, explicit: bool, into: LoadResult) -> None:
    display = display_path(path)
    text, problem = read_text(path, max_bytes)
    if problem is not None:
        into.targets.append(error_target(display, problem))
        return
    assert text is not None
    if not text.strip():
        if explicit:
            into.targets.append(error_target(display, "empty file"))
        else:
            log.info("%s: skipped, empty file", display)
        return
    for source in sources:
        try:
            accepted = source.sniff(path, text)
        except Exception as exc:  # a plugin's bug must not hide other files
            into.errors.append(InputError(display, f"source {source.name} failed to sniff: {exc!r}"))
            continue
        if not accepted:
            continue
        try:
            loaded = source.load(path, text, display)
        except SourceError as exc:
            into.targets.append(error_target(display, str(exc), source.name))
            return
        except Exception as exc:
            into.targets.append(
                error_target(display, f"source {source.name} failed: {type(exc).__name__}: {exc}", source.name)
            )
            return
        if not loaded.targets and not loaded.errors:
            _not_recognised(display, explicit, into)
        into.targets.extend(loaded.targets)
        into.errors.extend(loaded.errors)
        return
    _not_recognised(display, explicit, into)


def _not_recognised(display: str, explicit: bool, into: LoadResult) -> None:
    if explicit:
        into.targets.append(error_target(display, "not a recognised EC2 Image Builder distribution configuration"))
    else:
        log.info("%s: skipped, not a distribution configuration", display)


def read_text(path: Path, max_bytes: int) -> tuple[str | None, str | None]:
    """Read a file as UTF-8; return ``(text, None)`` or ``(None, problem)``."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            limit = max_bytes / 1_000_000
            return None, (
                f"file is {size / 1_000_000:.1f} MB, over the {limit:g} MB limit (raise max-file-size-mb in the config)"
            )
        data = path.read_bytes()
    except IsADirectoryError:
        return None, "is a directory"
    except FileNotFoundError:
        return None, "cannot read file: no such file (a broken link?)"
    except OSError as exc:
        return None, f"cannot read file: {exc.strerror or exc}"
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (invalid byte at offset {exc.start})"
