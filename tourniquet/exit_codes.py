"""What ``tourniquet run`` and ``tourniquet plan`` exit with: the one list of codes, each with its meaning.

The codes follow from a run's outcomes (:meth:`tourniquet.outcomes.Outcomes.exit_code`); the docs page
docs/reference/exit-codes.md shows :func:`exit_codes_markdown` (a test keeps them equal).

May import: the standard library only. Imported by: ``outcomes``, ``cli``.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode", "exit_codes_markdown"]


class ExitCode(IntEnum):
    """What ``tourniquet run`` and ``tourniquet plan`` exit with (documented in docs/reference/exit-codes.md)."""

    CONTAINED = 0
    NONE = 1
    USAGE = 2
    NEEDS_APPROVAL = 3
    PARTIAL = 4
    INTERNAL = 70
    INTERRUPTED = 130

    @property
    def description(self) -> str:
        return _EXIT_DESCRIPTIONS[self]


_EXIT_DESCRIPTIONS = {
    ExitCode.CONTAINED: "every named account is contained (run) or planned (plan)",
    ExitCode.NONE: "no account is contained (or planned), or nothing started",
    ExitCode.USAGE: "bad command line, input, playbook or site: nothing ran",
    ExitCode.NEEDS_APPROVAL: "plan only: the run will wait for an approval (blast radius, a flow.approval step)",
    ExitCode.PARTIAL: "some named accounts are contained (or planned) and some are not, or the run stopped after "
                      "containing some: the headline says which",
    ExitCode.INTERNAL: "internal error (a bug): please report it",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C): the journal holds what was done; run the same command to resume",
}


def exit_codes_markdown() -> str:
    """The table of :class:`ExitCode` as the docs show it (generated, so that it cannot drift)."""
    rows = [f"| {int(code)} | `{code.name}` | {code.description} |" for code in ExitCode]
    return "\n".join(["| code | name | meaning |", "|---|---|---|", *rows]) + "\n"
