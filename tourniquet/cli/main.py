"""``tourniquet``: validate, plan and run playbooks; undo, reinstate, verify evidence; hygiene; the demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tourniquet.cli import approve, demo, evidence, hygiene, incident, outbox, playbook
from tourniquet.cli.common import MaskedStream, print_errors
from tourniquet.errors import PlaybookErrors, TourniquetError
from tourniquet.secrets import mask

__all__ = ["main", "build_parser"]

#: Each module adds its subcommands (``register(subparsers)``), in the order ``--help`` lists them.
SUBCOMMANDS = (playbook, incident, evidence, outbox, hygiene, approve, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tourniquet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; what it prints is masked, and no input, however hostile, ends in a traceback."""
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = MaskedStream(streams[0]), MaskedStream(streams[1])  # type: ignore[assignment]
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args.func(args))
    except PlaybookErrors as exc:
        print_errors(exc)
        return 2
    except TourniquetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not an input problem: still no traceback with possibly sensitive values
        print(f"internal error: {type(exc).__name__}: {mask(str(exc))[:500]} (a bug: please report it)",
              file=sys.stderr)
        return 70
    finally:
        sys.stdout, sys.stderr = streams


if __name__ == "__main__":
    sys.exit(main())
