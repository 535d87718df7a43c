"""``tourniquet demo``: a local demo directory and a simulated incident, contained end to end."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def cmd_demo(args: argparse.Namespace) -> int:
    from tourniquet.demo.run import run_demo

    return run_demo(keep_running=args.keep_running, accounts=args.accounts)


def register(sub: Any) -> None:
    demo = sub.add_parser("demo", help="start a local demo directory and contain a simulated incident")
    demo.add_argument("--keep-running", action="store_true", help="leave the demo slapd running afterwards")
    demo.add_argument("--accounts", nargs="*", help="uids to contain (default: the demo's compromised ones)")
    demo.set_defaults(func=cmd_demo)
