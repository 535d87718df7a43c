"""``tourniquet server start|stop|status``: a long-lived local Prefect server that ``run`` finds."""

from __future__ import annotations

import argparse
from typing import Any

from tourniquet.cli.common import site_argument

__all__ = ["register"]


def cmd_server(args: argparse.Namespace) -> int:
    from tourniquet.config import load_site
    from tourniquet.flows import local_server

    state_dir = load_site(args.site).state_dir
    if args.action == "start":
        url = local_server.start(state_dir)
        print(f"prefect server: {url} (UI: {url.removesuffix('/api')}); `tourniquet run` uses it. "
              f"Stop it with `tourniquet server stop`.")
        return 0
    if args.action == "stop":
        print("stopped" if local_server.stop(state_dir) else "no local server was running")
        return 0
    found = local_server.find(state_dir)
    print(f"running: {found}" if found else "not running")
    return 0 if found else 1


def register(sub: Any) -> None:
    server = sub.add_parser("server", help="start, stop or check a local Prefect server that `run` uses")
    server.add_argument("action", choices=("start", "stop", "status"))
    site_argument(server)
    server.set_defaults(func=cmd_server)
