"""Audit the files of a scan in several processes.

A file scan is CPU-bound Python (parsing, rules, locating findings), so one process
uses one core however many the machine has. With ``--jobs N`` (default: one per core,
up to ``MAX_AUTO_JOBS``, when the scan is big enough to repay starting them) the files
are shared among N forked worker processes. Each worker reads, loads and audits whole
files (a Terraform module's files together) exactly as the single-process scan does
(``sources._load_file`` and ``Audit.add_file``) and sends back what the files became:
their slim targets, their errors, and what the audit recorded (findings, could-not-verify
entries, warnings, notes).
The parent merges them in the order of the files, so the result, and every report,
is the same as a single-process scan's.

Workers are forked, so they inherit the configured plugins, rules and settings
without pickling them; where ``fork`` is unavailable (Windows, and macOS where it is
unsafe) the scan stays in one process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from auditor.model import Target
from auditor.sources import LoadResult, OnFile, _excluded, _forget_json, _load_file, error_target, walk

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


# Item of the ordered work list: a file to load (path, named explicitly) or a target the
# walk already made (a directory that could not be read, a missing path).
_Item = tuple[Path, bool] | Target


def plan(
    paths: Sequence[str],
    *,
    exclude: Callable[[Path], bool] | None,
    force_exclude: Callable[[Path], bool] | None,
    strict: bool,
) -> list[_Item]:
    """Every file ``load_paths`` would read, in its order, with the error targets the
    walk makes in between (so a parallel scan lists them where a serial one does)."""
    items: list[_Item] = []
    for raw in paths:
        path = Path(raw)
        if force_exclude is not None and _excluded(path, force_exclude):
            continue
        if path.is_dir():
            walk_errors: list[Target] = []
            for file in walk(path, exclude, walk_errors):
                items.extend(walk_errors)
                walk_errors.clear()
                items.append((file, False))
            items.extend(walk_errors)
        elif path.exists() or path.is_symlink():
            items.append((path, strict))
        else:
            items.append(error_target(raw, "no such file or directory"))
    return items


def worth_forking(items: Sequence[_Item], jobs: int | None) -> int:
    """The number of processes to use: ``jobs`` when given, else by the size of the work."""
    files = [item for item in items if not isinstance(item, Target)]
    units = sum(1 for task in _tasks(items) if not isinstance(task, Target))  # what workers share
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


def load_serially(items: Sequence[_Item], sources: Sequence[Any], max_bytes: int, on_file: OnFile | None) -> LoadResult:
    """``load_paths`` over ``plan``'s items in this process (the walk is not made twice)."""
    result = LoadResult()
    try:
        for item in items:
            if isinstance(item, Target):
                result.targets.append(item)
            else:
                _load_file(item[0], sources, max_bytes, explicit=item[1], into=result, on_file=on_file)
    finally:
        _forget_json()
    return result


class Collector:
    """What an audit records while it reads files, taken out after each file in a worker
    and put back, in file order, in the parent (see ``engine.Audit.take`` / ``put``)."""

    def __init__(self, take: Callable[[], Any], put: Callable[[Any], None]) -> None:
        self.take = take
        self.put = put


# Set in the parent just before the workers are forked; the workers inherit it.
_JOB: tuple[Sequence[Any], int, OnFile | None, Collector] | None = None


def _work(files: list[tuple[Path, bool]]) -> tuple[LoadResult, Any]:
    assert _JOB is not None
    sources, max_bytes, on_file, collector = _JOB
    into = LoadResult()
    for path, explicit in files:
        _load_file(path, sources, max_bytes, explicit=explicit, into=into, on_file=on_file)
    return into, collector.take()


def _module_file(path: Path) -> bool:
    return path.name.endswith((".tf", ".tf.json"))


def _tasks(items: Sequence[_Item]) -> list[Target | list[tuple[Path, bool]]]:
    """``items`` with their files cut into the units a worker takes: one file, or every
    file of a Terraform module (a directory's ``.tf`` and ``.tf.json`` files, next to
    each other in the walk). A module's files read its variables and report problems in
    its ``.tfvars`` once; spread over workers, each worker would report them again."""
    tasks: list[Target | list[tuple[Path, bool]]] = []
    for item in items:
        if isinstance(item, Target):
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
    items: Sequence[_Item],
    sources: Sequence[Any],
    max_bytes: int,
    *,
    jobs: int,
    on_file: OnFile | None,
    collector: Collector,
) -> LoadResult:
    """``load_paths`` over ``plan``'s items in ``jobs`` forked processes; the same result.

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
    before = collector.take()
    _JOB = (sources, max_bytes, on_file, collector)
    tasks = _tasks(items)
    pool = None
    try:
        try:
            # With fork, the executor starts every worker at the first submission, before
            # its own manager thread: no process is forked while this one has other threads.
            pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"))
            done = pool.map(_work, [task for task in tasks if not isinstance(task, Target)])
        except (OSError, ImportError, NotImplementedError) as exc:
            raise CannotFork(str(exc)) from None
        with pool:
            collector.put(before)
            before = None
            for task in tasks:
                if isinstance(task, Target):
                    result.targets.append(task)
                    continue
                loaded, recorded = next(done)
                result.targets.extend(loaded.targets)
                result.errors.extend(loaded.errors)
                collector.put(recorded)
    except BrokenProcessPool as exc:
        raise WorkerDied(f"a worker process of the scan died ({exc}); rerun with --jobs 1") from None
    finally:
        if before is not None:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            collector.put(before)
        _JOB = None
        _forget_json()
    return result


class CannotFork(RuntimeError):
    """No worker process could be started here; nothing of the scan was merged yet."""


class WorkerDied(RuntimeError):
    """A worker process ended without sending back its file (killed, out of memory)."""
