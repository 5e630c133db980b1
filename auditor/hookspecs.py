"""Every hook ib-audit defines, in one place.

A plugin is any module or object with functions marked ``@hookimpl`` whose names are
below. Built-in sources, the rule pack and the reporters are plugins of exactly this
kind; external packages register theirs under the entry-point group ``ib_audit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from auditor.config import Settings
    from auditor.context import FactProvider
    from auditor.model import AuditResult, Finding, Suppression, Target
    from auditor.reporting import Reporter
    from auditor.rule import Rule
    from auditor.sinks import Sink
    from auditor.sources import FileSource

PROJECT = "ib_audit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class AuditorSpec:
    """The hook specifications (pluggy calls each implementation by name)."""

    @hookspec
    def auditor_add_rules(self) -> Sequence[type[Rule]]:
        """Contribute rule classes.

        :return: rule classes; each id must be unique across all plugins.
        """

    @hookspec
    def auditor_add_file_sources(self) -> Sequence[FileSource]:
        """Contribute loaders that turn files into targets.

        :return: sources; for each file the first whose ``sniff`` accepts it loads it,
            in ascending ``priority`` order. A source that takes inputs of its own
            (``--parameters``, ``--var-file``) may define ``configure(settings)``, called
            once before any file is loaded and returning a list of ``InputError``.
        """

    @hookspec
    def auditor_add_reporters(self) -> Sequence[Reporter]:
        """Contribute report formats selectable with ``-f NAME``.

        :return: reporters; each name must be unique.
        """

    @hookspec
    def auditor_add_fact_providers(self) -> Sequence[FactProvider]:
        """Contribute providers of account-context facts that rules may ask for.

        A provider has a ``kind`` (the fact kind rules name in ``Rule.facts`` and in
        their ``FactKey``), the IAM ``actions`` it may call, and
        ``fetch(key, call, facts)``, which makes read-only calls through ``call``
        (retried and paced like the live scan) and returns the value, None for "does
        not exist", or raises ``auditor.context.CallFailed``. Each distinct key is
        fetched once per run. Providers run only in scans with AWS access.

        :return: providers; each kind must be unique across all plugins.
        """

    @hookspec
    def auditor_add_sinks(self) -> Sequence[Sink]:
        """Contribute sinks: places a scan's results are sent to, beside the reports.

        A sink is chosen with ``--sink NAME`` (``--security-hub`` is the built-in one).
        Its ``send(result, context)`` runs after the scan, before the reports are
        written; the errors it returns join the result's errors (exit code 2) and its
        summary appears in the JSON report under ``sinks``.

        :return: sinks; each name must be unique.
        """

    @hookspec
    def auditor_configure(self, settings: Settings) -> None:
        """Called once the configuration is resolved, before anything is scanned.

        :param settings: the merged configuration file and command-line settings.
        """

    @hookspec(firstresult=True)
    def auditor_suppress(self, finding: Finding, target: Target) -> Suppression | None:
        """Decide whether a finding is suppressed; the first non-None answer wins.

        Asked only for findings that the authors' inline suppressions and the
        configuration's ``per-path-ignores`` left active. Asked in the process that
        audits the finding's file: with ``--jobs``, a worker process, so an answer must
        not depend on what the hook saw of other files.

        :param finding: the finding, not yet suppressed.
        :param target: the configuration it was found in.
        :return: a suppression with its reason, or None to leave the finding active.
        """

    @hookspec
    def auditor_session_finish(self, result: AuditResult) -> None:
        """Called with the final result, before reports are written, in the main process.

        The place for checks across configurations: rules and ``auditor_suppress`` see
        one file's configurations at a time (with ``--jobs``, in worker processes).

        :param result: every target, finding and error of the run.
        """
