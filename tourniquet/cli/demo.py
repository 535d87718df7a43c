"""``tourniquet demo``: a local demo directory and a simulated incident, contained end to end."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def cmd_demo(args: argparse.Namespace) -> int:
    from tourniquet.demo.run import run_demo, stop_demo

    if args.stop:
        return stop_demo()
    return run_demo(keep_running=args.keep_running, accounts=args.accounts)


def register(sub: Any) -> None:
    demo = sub.add_parser("demo", help="start a local demo directory and contain a simulated incident")
    demo.add_argument("--keep-running", action="store_true",
                      help="leave the demo directory (slapd) up afterwards, until `tourniquet demo --stop`")
    demo.add_argument("--stop", action="store_true", help="stop a demo directory left running, and exit")
    demo.add_argument("--accounts", nargs="*", help="uids to contain (default: the demo's compromised ones)")
    demo.set_defaults(func=cmd_demo)
