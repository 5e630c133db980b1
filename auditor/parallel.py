"""Audit the files of a scan in several processes.

A file scan is CPU-bound Python (parsing, rules, locating findings), so one process
uses one core however many the machine has. With ``--jobs N`` (default: one per core,
up to ``MAX_AUTO_JOBS``, when the scan is big enough to repay starting them) the files
are shared among N forked worker processes. Each worker reads, loads and audits whole
files (a Terraform module's files together) exactly as the single-process scan does
(``sources.load_inputs`` and ``Audit.add_file``) and sends back what the files became:
their slim targets, their errors, and what the audit recorded (findings, could-not-verify
entries, warnings, notes).
The parent merges them in the order of the files, so the result, and every report,
is the same as a single-process scan's.

Workers are forked, so they inherit the configured plugins, rules and settings
without pickling them; where ``fork`` is unavailable (Windows, and macOS where it is
unsafe) the scan stays in one process.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from auditor.model import Notice, Target
from auditor.sources import Input, LoadResult, OnFile, _forget_json, load_inputs

# "auto" uses at most this many processes: past it the parent's merging dominates.
MAX_AUTO_JOBS = 8
# "auto" forks only when the files to read add up to at least this much text: below it a
# scan takes well under a second, and starting workers would cost more than it saves.
AUTO_MIN_BYTES = 4_000_000
AUTO_MIN_FILES = 4


def auto_jobs() -> int:
    """How many processes ``--jobs auto`` may use: the cores this process may run on."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_AUTO_JOBS))


def can_fork() -> bool:
    """Whether workers can be forked safely here (Linux and the BSDs; not macOS or Windows)."""
    return hasattr(os, "fork") and sys.platform != "darwin"


def worth_forking(items: Sequence[Input], jobs: int | None) -> int:
    """The number of processes to use: ``jobs`` when given, else by the size of the work."""
    files = [item for item in items if isinstance(item, tuple)]
    units = sum(1 for task in _tasks(items) if isinstance(task, list))  # what workers share
    if jobs is not None:
        return max(1, min(jobs, units))
    if len(files) < AUTO_MIN_FILES or units < 2 or not can_fork():
        return 1
    total = 0
    for path, _ in files:
        try:
            total += os.stat(path).st_size
        except OSError:
            continue
        if total >= AUTO_MIN_BYTES:
            return min(auto_jobs(), units)
    return 1


class Recorder(Protocol):
    """What an audit records while it reads files (``engine.Audit``): taken out after each
    file in a worker and put back, in file order, in the parent."""

    def take(self) -> Any: ...

    def put(self, recorded: Any) -> None: ...


# Set in the parent just before the workers are forked; the workers inherit it.
_JOB: tuple[Sequence[Any], int, OnFile | None, Recorder] | None = None


def _work(files: list[tuple[Path, bool]]) -> tuple[LoadResult, Any, list[logging.LogRecord]]:
    assert _JOB is not None
    sources, max_bytes, on_file, recorder = _JOB
    with _Held() as held:  # written by the parent in file order, not as workers finish
        loaded = load_inputs(files, sources, max_bytes, on_file)
    return loaded, recorder.take(), held.records


class _Held(logging.Handler):
    """Holds what is logged (``-v``) while it is installed in place of the root logger's
    handlers, to be written later, in order, by ``_write_held``."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Made plain, so that it pickles: its arguments may be anything.
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        self.records.append(record)

    def take(self) -> list[logging.LogRecord]:
        records, self.records = self.records, []
        return records

    def __enter__(self) -> _Held:
        root = logging.getLogger()
        self._saved = root.handlers
        root.handlers = [self]
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().handlers = self._saved


def _write_held(records: Iterable[logging.LogRecord]) -> None:
    for record in records:
        logging.getLogger(record.name).handle(record)


def listed(found: Iterable[Input]) -> tuple[list[Input], dict[int, list[logging.LogRecord]]]:
    """Every input of ``found`` (a lazy walk), and what the walk logged before each (by
    its index in the list): written back in place by ``replayed`` or by the workers'
    merge, a scan's ``-v`` lines come in the order of a one-process scan's."""
    items: list[Input] = []
    logged: dict[int, list[logging.LogRecord]] = {}
    with _Held() as held:
        for item in found:
            if held.records:
                logged[len(items)] = held.take()
            items.append(item)
    if held.records:
        logged[len(items)] = held.take()
    return items, logged


def replayed(items: Sequence[Input], logged: dict[int, list[logging.LogRecord]]) -> Iterator[Input]:
    """``items`` again, writing what the walk logged before each as it is reached."""
    for index, item in enumerate(items):
        _write_held(logged.get(index, ()))
        yield item
    _write_held(logged.get(len(items), ()))


def _module_file(path: Path) -> bool:
    return path.name.endswith((".tf", ".tf.json"))


def _tasks(items: Sequence[Input]) -> list[Target | Notice | list[tuple[Path, bool]]]:
    """``items`` with their files cut into the units a worker takes: one file, or every
    file of a Terraform module (a directory's ``.tf`` and ``.tf.json`` files, next to
    each other in the walk). A module's files read its variables and report problems in
    its ``.tfvars`` once; spread over workers, each worker would report them again."""
    tasks: list[Target | Notice | list[tuple[Path, bool]]] = []
    for item in items:
        if not isinstance(item, tuple):  # made in the parent: kept there, in its place
            tasks.append(item)
            continue
        last = tasks[-1] if tasks else None
        if (
            isinstance(last, list)
            and _module_file(item[0])
            and _module_file(last[-1][0])
            and item[0].parent == last[-1][0].parent
        ):
            last.append(item)
        else:
            tasks.append([item])
    return tasks


def load_in_workers(
    items: Sequence[Input],
    sources: Sequence[Any],
    max_bytes: int,
    *,
    jobs: int,
    on_file: OnFile | None,
    recorder: Recorder,
    logged: dict[int, list[logging.LogRecord]] | None = None,
) -> LoadResult:
    """``load_inputs`` in ``jobs`` forked processes; the same result.

    A worker that dies (killed for memory) ends the scan with ``WorkerDied`` rather
    than leaving it waiting for a file that will never come back. Workers that cannot
    be started at all (no ``/dev/shm`` for the pool's semaphores, as in AWS Lambda; a
    fork refused for lack of memory) raise ``CannotFork`` before anything is merged:
    the caller scans in this process instead.
    """
    # Imported here: a scan that stays in one process does not pay for them. (Where the
    # platform lacks sem_open, importing multiprocessing itself fails.)
    try:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool
    except ImportError as exc:
        raise CannotFork(str(exc)) from None

    global _JOB
    result = LoadResult()
    # Workers start with nothing recorded, so that nothing recorded before the fork comes
    # back twice; the parent puts it back first, where a serial scan has it.
    before = recorder.take()
    _JOB = (sources, max_bytes, on_file, recorder)
    tasks = _tasks(items)
    pool = None
    try:
        try:
            # With fork, the executor starts every worker at the first submission, before
            # its own manager thread: no process is forked while this one has other threads.
            pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"))
            done = pool.map(_work, [task for task in tasks if isinstance(task, list)])
        except (OSError, ImportError, NotImplementedError) as exc:
            raise CannotFork(str(exc)) from None
        logged = logged or {}
        with pool:
            recorder.put(before)
            before = None
            position = 0  # index in ``items`` of the task's first input
            for task in tasks:
                count = len(task) if isinstance(task, list) else 1
                for index in range(position, position + count):
                    _write_held(logged.get(index, ()))
                position += count
                if isinstance(task, Target):
                    result.targets.append(task)
                    continue
                if isinstance(task, Notice):
                    result.notices.append(task)
                    continue
                loaded, recorded, records = next(done)
                _write_held(records)
                result.targets.extend(loaded.targets)
                result.errors.extend(loaded.errors)
                result.notices.extend(loaded.notices)
                recorder.put(recorded)
            _write_held(logged.get(position, ()))
    except BrokenProcessPool as exc:
        raise WorkerDied(f"a worker process of the scan died ({exc}); rerun with --jobs 1") from None
    finally:
        if before is not None:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            recorder.put(before)
        _JOB = None
        _forget_json()
    return result


class CannotFork(RuntimeError):
    """No worker process could be started here; nothing of the scan was merged yet."""


class WorkerDied(RuntimeError):
    """A worker process ended without sending back its file (killed, out of memory)."""
