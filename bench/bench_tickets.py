"""Ticket writes: what durability and one-ticket-per-incident cost, against plain baselines.

    .venv/bin/python bench/bench_tickets.py [--writes 300] [--rt]

- ``outbox append``: one queued ticket write (JSON file, fsync, rename, fsync of the folder), under the
  per-incident lock — vs ``plain write`` (the same JSON written without fsync or rename).
- ``file store comment``: ``TicketClient.comment`` on the embedded store (lock, ledger, atomic JSON + Markdown)
  — vs ``plain write``.
- with ``--rt`` (Request Tracker installed): ``TicketClient.open`` of new incidents (search, create, verify
  by search) vs a bare REST2 ``POST /ticket``, on a private RT started here.

Prints each time per write and its ratio to the baseline.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tourniquet.connectors.tickets import TicketClient, TicketDraft  # noqa: E402
from tourniquet.connectors.tickets.file import FileStore  # noqa: E402
from tourniquet.outbox import Outbox  # noqa: E402


def timed(label: str, count: int, func) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for n in range(count):
        func(n)
    per = (time.perf_counter() - start) / count
    print(f"  {label:<28} {per * 1000:8.3f} ms/write")
    return per


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--rt", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-tickets-"))
    payload = {"text": "Data scope: 14 patient records viewed " * 4}

    print(f"{args.writes} writes, {folder}")
    plain_dir = folder / "plain"
    plain_dir.mkdir()
    base = timed("plain write", args.writes,
                 lambda n: (plain_dir / f"{n:010d}.json").write_text(json.dumps(payload)))
    outbox = Outbox(folder, "bench")

    def append(n: int) -> None:
        with outbox.lock("inc-bench"):
            outbox.append("inc-bench", "comment", payload)

    queued = timed("outbox append (fsync'd)", args.writes, append)
    client = TicketClient(FileStore(folder / "tickets"), folder / "state")
    client.open("inc-bench", TicketDraft(title="bench"))
    store = timed("file store comment", min(args.writes, 200), lambda n: client.comment("inc-bench", f"update {n}"))
    print(f"  ratios vs plain write: outbox append x{queued / base:.1f}, file store comment x{store / base:.1f}")

    if args.rt:
        import httpx

        from tests.rt import RtServer
        from tourniquet.connectors.tickets import TicketsConfig
        from tourniquet.connectors.tickets.rt import RequestTracker

        server = RtServer(folder / "rt")
        server.prepare()
        server.start()
        try:
            (folder / "pw").write_text(server.password)
            config = TicketsConfig.model_validate({"kind": "rt", "url": server.url, "user": "root",
                                                   "password": {"file": str(folder / "pw")}})
            rt_client = TicketClient(RequestTracker(config), folder / "rt-state")
            bare = httpx.Client(base_url=f"{server.url}/REST/2.0/", auth=("root", server.password), timeout=30)
            count = 20
            raw = timed("RT bare POST /ticket", count, lambda n: bare.post("ticket", json={
                "Queue": "General", "Subject": f"bare {n}", "Content": "x", "ContentType": "text/plain",
                "CustomFields": {"IncidentKey": f"bare-{n}"}}).raise_for_status())
            ours = timed("RT TicketClient.open", count, lambda n: rt_client.open(f"bench-{n}", TicketDraft(title="t")))
            print(f"  ratio vs bare POST: TicketClient.open x{ours / raw:.1f}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
