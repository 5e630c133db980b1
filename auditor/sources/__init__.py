"""Turning the paths a user named into targets.

Files are recognised by content: every source plugin ``sniff``s the text and the first
that accepts it (lowest ``priority``) loads it. Sniffing may be fooled by words (a
description that mentions a CloudFormation type), so a source that finds nothing in a
file it accepted hands the file on to the next one; JSON texts are decoded once
(``json_document``) so that sources can sniff them by structure. During a directory walk
only files with a known extension are read, and a file no source accepts is skipped
quietly (logged with ``-v``); a file the user named explicitly and no source accepts is
an error.

Only regular files are read, and never more than the size limit: FIFOs, devices and
sockets (or links to them) are errors that are never opened. The walk does not follow
symbolic links to directories (``-v`` lists them), so it cannot loop or leave the tree,
and it reads a symbolic link to a file only when the file is inside the directory walked:
a link out of it (to ``/proc/self/environ``, to a CI runner's credentials) is skipped with
a warning, so a pull request cannot make a scan read, and its reports quote, a file
outside the checkout. A file named on the command line is read wherever it is. A
directory the walk cannot read is an error naming it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from auditor.model import InputError, Notice, Origin, SourceMap, Target

log = logging.getLogger("ib_audit.sources")

SKIP_DIRS = frozenset({".git", "node_modules", ".terraform", ".hg", ".svn", "__pycache__", ".venv"})
WALK_EXTENSIONS = frozenset({".json", ".yaml", ".yml", ".template", ".tf", ".tf.json"})
# Deeper than this, a JSON or YAML document is an error with the line and column where it
# goes too deep: recursive code downstream (YAML conversion, rules, reporters) must never
# meet Python's recursion limit. Real configurations nest about 10 levels.
MAX_NESTING = 200

_FILE_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}
_LEADING_SPACE = re.compile(r"\s*")


@dataclass
class LoadResult:
    """What a source made of one file: targets, plus problems that did not stop it."""

    targets: list[Target] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    # Warnings about the inputs that are not errors (a walk skipped a link out of its tree).
    notices: list[Notice] = field(default_factory=list)
    # Live scans: (account, region) -> every configuration ARN its listing returned, for each
    # listing that completed without an error or a skipped summary (the account is None
    # for the scan's own credentials). What is not listed there no longer exists.
    listed: dict[tuple[str | None, str], frozenset[str]] = field(default_factory=dict)


# Called with one file's targets, its display path and its text; returns the targets to keep.
OnFile = Callable[[list[Target], str, str], list[Target]]


class SourceError(Exception):
    """The file cannot be loaded at all; the message names the problem (with line/column)."""


class FileSource(Protocol):
    name: str  # origin kind, e.g. "json"
    priority: int  # lower sniffs first

    def sniff(self, path: Path, text: str) -> bool:
        """Cheap check whether this file may be of this source's kind (by structure where
        ``json_document`` can tell, else by words)."""

    def load(self, path: Path, text: str, display: str) -> LoadResult:
        """Parse the file; raise SourceError for a file that cannot be read at all.

        An empty result (no targets, no errors) hands the file on to the next source.
        """


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
    """A path as reports show it: relative to the working directory when inside it.

    Symbolic links are not resolved: a finding names the file the user sees.
    """
    absolute = os.path.abspath(path)
    cwd = os.getcwd()
    if absolute == cwd:
        return "."
    if absolute.startswith(cwd.rstrip(os.sep) + os.sep):
        return Path(absolute[len(cwd.rstrip(os.sep)) + 1 :]).as_posix()
    return path.as_posix()


def walk(
    root: Path,
    exclude: Callable[[Path], bool] | None = None,
    errors: list[Target | Notice] | None = None,
    *,
    quiet: bool = False,
) -> Iterator[Path]:
    """Files under ``root`` with a known extension, in sorted order, directory by directory.

    ``exclude`` (else ``SKIP_DIRS``) prunes. Symbolic links to directories are listed
    under ``-v`` and not followed. Appended to ``errors``: an error target for a
    directory that cannot be read, a warning for a link to a file outside ``root``.
    ``quiet``: a second walk of what the scan walks (Terraform's module calls) skips the
    same files without saying so again.
    """
    inside: str | None = None  # root with its links resolved, found at the first file link
    pending = [root]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            if errors is not None:
                errors.append(error_target(display_path(directory), f"cannot read directory: {exc.strerror or exc}"))
            continue
        subdirectories = []
        for entry in entries:
            path = Path(entry.path)
            link = False
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIP_DIRS if exclude is None else not _excluded(path, exclude):
                        subdirectories.append(path)
                    continue
                link = entry.is_symlink()
                if link and entry.is_dir():
                    if not quiet:
                        log.info("%s: skipped, a symbolic link to a directory (not followed)", display_path(path))
                    continue
            except OSError:
                pass  # a loop or a dangling link: reading the file reports it
            if any(entry.name.endswith(ext) for ext in WALK_EXTENSIONS):
                if exclude is not None and _excluded(path, exclude):
                    continue
                if link:
                    if inside is None:
                        inside = os.path.join(os.path.realpath(root), "")
                    if not os.path.realpath(path).startswith(inside):
                        if not quiet:
                            _skip_link_out(path, root, errors)
                        continue
                yield path
        pending.extend(reversed(subdirectories))


def _skip_link_out(path: Path, root: Path, errors: list[Target | Notice] | None) -> None:
    display = display_path(path)
    try:
        to = os.readlink(path)  # as committed: what the link says, not what it resolves to now
    except OSError:
        to = os.path.realpath(path)
    message = (
        f"skipped: a symbolic link to {to}, outside the directory scanned "
        f"({display_path(root)}); name the file on the command line to scan it"
    )
    log.info("%s: %s", display, message)
    if errors is not None:
        errors.append(Notice("skipped-link", message, input=display))


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
    on_file: OnFile | None = None,
) -> LoadResult:
    """Load every file under ``paths``; each named input ends as targets or as an error.

    With ``strict=False`` a named file that is not a configuration is skipped quietly,
    as in a directory walk (pre-commit passes every staged file of a type). ``exclude``
    prunes the walk; a path named explicitly is skipped only when ``force_exclude``
    says so (ruff's ``--force-exclude``). ``on_file(targets, display, text)`` is called
    with each file's targets while its text is read; the targets it returns are kept
    (a scan audits them there and keeps only what reports need).
    """
    items = inputs(paths, strict=strict, exclude=exclude, force_exclude=force_exclude)
    return load_inputs(items, sources, max_bytes, on_file)


# One input of a scan, in order: a file to load (its path, and whether it was named
# explicitly), a target already made for a path that cannot be read, or a warning
# about a path the walk skipped.
Input = tuple[Path, bool] | Target | Notice


def inputs(
    paths: Sequence[str],
    *,
    strict: bool = True,
    exclude: Callable[[Path], bool] | None = None,
    force_exclude: Callable[[Path], bool] | None = None,
) -> Iterator[Input]:
    """The files under ``paths`` in the order they are loaded, with an error target
    where a directory cannot be read or a path does not exist, found as they are asked
    for (``load_paths``), or listed first to be shared among processes (``--jobs``)."""
    for raw in paths:
        path = Path(raw)
        if force_exclude is not None and _excluded(path, force_exclude):
            continue
        if path.is_dir():
            walk_errors: list[Target | Notice] = []
            for file in walk(path, exclude, walk_errors):
                yield from walk_errors
                walk_errors.clear()
                yield file, False
            yield from walk_errors
        elif path.exists() or path.is_symlink():
            yield path, strict
        else:
            yield error_target(raw, "no such file or directory")


def load_inputs(
    items: Iterable[Input], sources: Sequence[FileSource], max_bytes: int, on_file: OnFile | None = None
) -> LoadResult:
    """Load ``inputs``' files in order, keeping the error targets where they stand."""
    result = LoadResult()
    try:
        for item in items:
            if isinstance(item, Target):
                result.targets.append(item)
            elif isinstance(item, Notice):
                result.notices.append(item)
            else:
                _load_file(item[0], sources, max_bytes, explicit=item[1], into=result, on_file=on_file)
    finally:
        _forget_json()
    return result


def _load_file(
    path: Path,
    sources: Sequence[FileSource],
    max_bytes: int,
    *,
    explicit: bool,
    into: LoadResult,
    on_file: OnFile | None = None,
) -> None:
    try:
        _read_and_load(path, sources, max_bytes, explicit, into, on_file)
    finally:
        _forget_json()  # the next file is another text: let this one's document go


def _read_and_load(
    path: Path, sources: Sequence[FileSource], max_bytes: int, explicit: bool, into: LoadResult, on_file
) -> None:
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
        except RecursionError:
            message = "nested too deeply to read (past Python's recursion limit)"
            into.targets.append(error_target(display, message, source.name))
            return
        except MemoryError:
            into.targets.append(error_target(display, "ran out of memory reading this file", source.name))
            return
        except Exception as exc:
            into.targets.append(
                error_target(display, f"source {source.name} failed: {type(exc).__name__}: {exc}", source.name)
            )
            return
        if not loaded.targets and not loaded.errors:
            # Accepted by its words but holding nothing of this kind: the next source may
            # recognise it (an API response whose description names a CloudFormation type).
            continue
        into.errors.extend(loaded.errors)
        into.notices.extend(loaded.notices)
        into.targets.extend(on_file(loaded.targets, display, text) if on_file is not None else loaded.targets)
        return
    _not_recognised(display, explicit, into)


def _not_recognised(display: str, explicit: bool, into: LoadResult) -> None:
    if explicit:
        into.targets.append(error_target(display, "not a recognised EC2 Image Builder distribution configuration"))
    else:
        log.info("%s: skipped, not a distribution configuration", display)


def read_text(path: Path, max_bytes: int) -> tuple[str | None, str | None]:
    """Read a regular file as UTF-8, at most ``max_bytes``; return ``(text, None)`` or ``(None, problem)``.

    FIFOs, devices and sockets are never opened (a FIFO blocks forever, ``/dev/zero``
    never ends); the read itself is bounded too, since ``st_size`` can lie (``/proc``).
    """
    limit = f"the {max_bytes / 1_000_000:g} MB limit (raise max-file-size-mb in the config)"
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            if stat.S_ISDIR(info.st_mode):
                return None, "is a directory"
            kind = _FILE_KINDS.get(stat.S_IFMT(info.st_mode), "a special file")
            return None, f"not a regular file ({kind}); not read"
        if info.st_size > max_bytes:
            return None, f"file is {info.st_size / 1_000_000:.1f} MB, over {limit}"
        # O_NONBLOCK: should the path have become a FIFO since the stat, opening it
        # does not wait for a writer; fstat below then refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None, "not a regular file (it changed while being opened); not read"
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        return None, "cannot read file: no such file (a broken link?)"
    except OSError as exc:
        return None, f"cannot read file: {exc.strerror or exc}"
    if len(data) > max_bytes:
        return None, f"file reads as more than {max_bytes / 1_000_000:g} MB, over {limit}"
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (invalid byte at offset {exc.start})"


def read_option_file(raw: str, option: str, max_bytes: int) -> tuple[Path, str, str] | InputError:
    """A file named by a command-line option (``--parameters``, ``--var-file``): its path,
    display name and text, or one error naming the file and the option."""
    path = Path(raw)
    display = display_path(path)
    if not path.is_file():
        problem: str | None = "not a regular file" if path.exists() else "no such file"
        return InputError(display, f"{option}: {problem}")
    text, problem = read_text(path, max_bytes)
    if problem is not None:
        return InputError(display, f"{option}: {problem}")
    return path, display, text or ""


# -- JSON decoded once per file -----------------------------------------------------------------
NOT_JSON: Any = object()
# The last text decoded, its value, where the elements of a top-level list start, and
# whether any object in it repeats a key.
_last_json: tuple[str | None, Any, dict[str, int] | None, bool] = (None, NOT_JSON, None, True)
_WS = re.compile(r"[ \t\n\r]*")  # JSON's whitespace, as json.decoder.WHITESPACE
_repeated_keys = [False]


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads' own object (the last of repeated keys wins), noting any repeat."""
    value = dict(pairs)
    if len(value) != len(pairs):
        _repeated_keys[0] = True
    return value


_DECODER = json.JSONDecoder(object_pairs_hook=_object)
_SCAN_ONCE = _DECODER.scan_once  # the C scanner: (text, index) -> (value, end)


def looks_like_json(text: str) -> bool:
    """True when the first non-blank character opens a JSON object or array."""
    start = _LEADING_SPACE.match(text).end()
    return text[start : start + 1] in ("{", "[")


def json_document(text: str) -> Any:
    """``text`` decoded as JSON, or ``NOT_JSON``: decoded once however many sources ask.

    Sources sniff JSON by structure with it; the loader reuses it. Only the most recent
    file is remembered.
    """
    global _last_json
    cached_text, value, _, _ = _last_json
    if cached_text is text:
        return value
    value, offsets = NOT_JSON, None
    _repeated_keys[0] = False
    if looks_like_json(text):
        try:
            value, offsets = _decode(text)
        except (ValueError, RecursionError):
            value = NOT_JSON
    _last_json = (text, value, offsets, _repeated_keys[0] or value is NOT_JSON)
    return value


def json_layout(text: str) -> tuple[dict[str, int] | None, bool]:
    """What ``json_document`` learnt of ``text``'s layout: where each element of a
    top-level list starts (``{"0": offset, ...}``, else None), and whether any object
    repeats a key (True when unknown). A locator then never decodes that list again,
    and reads objects to their end only when a later key may override an earlier one."""
    cached_text, _, offsets, repeated = _last_json
    return (offsets, repeated) if cached_text is text else (None, True)


def _decode(text: str) -> tuple[Any, dict[str, int] | None]:
    """``json.loads(text)``; a top-level list is decoded element by element with the same
    C scanner, which yields where each element starts at no extra cost. Anything unusual
    is left to ``json.loads``, so values and errors are exactly its own."""
    ws = _WS.match
    i = ws(text).end()
    if text[i : i + 1] != "[":
        return _DECODER.decode(text), None
    items: list[Any] = []
    offsets: dict[str, int] = {}
    scan = _SCAN_ONCE
    try:
        i = ws(text, i + 1).end()
        if text[i : i + 1] != "]":
            while True:
                offsets[str(len(items))] = i
                item, i = scan(text, i)
                items.append(item)
                i = ws(text, i).end()
                if text[i : i + 1] == ",":
                    i = ws(text, i + 1).end()
                    continue
                break
        if text[i : i + 1] != "]" or ws(text, i + 1).end() != len(text):
            raise StopIteration
    except StopIteration:
        return _DECODER.decode(text), None  # raises the error json.loads reports
    return items, offsets


def _forget_json() -> None:
    global _last_json
    _last_json = (None, NOT_JSON, None, True)
