"""``tourniquet``: validate, plan and run playbooks; undo, reinstate, verify evidence; hygiene; the demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tourniquet.cli import approve, audit, demo, evidence, hygiene, incident, outbox, playbook
from tourniquet.cli.common import print_errors
from tourniquet.errors import PlaybookErrors, TourniquetError

__all__ = ["main", "build_parser"]

#: Each module adds its subcommands (``register(subparsers)``), in the order ``--help`` lists them.
SUBCOMMANDS = (playbook, incident, evidence, audit, outbox, hygiene, approve, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tourniquet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except PlaybookErrors as exc:
        print_errors(exc)
        return 2
    except TourniquetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
