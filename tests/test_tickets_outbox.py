"""The outbox: ticket writes wait while the ticket system is down, survive the process dying,
and are delivered in order, exactly once, by the next operation, the next run or the flow."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import write_site
from tourniquet.connectors.tickets import TicketClient, TicketDraft, TicketRef
from tourniquet.connectors.tickets.file import FileStore
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd
from tourniquet.errors import TransientError
from tourniquet.outbox import Outbox


class Flaky(FileStore):
    """A file store that can be 'down' (every call raises TransientError, as an unreachable system)."""

    system = "flaky"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise TransientError("connection refused", system=self.system)

    def find_open(self, key: str) -> TicketRef | None:
        self._check()
        return super().find_open(key)

    def create(self, key: str, draft: TicketDraft) -> TicketRef:
        self._check()
        return super().create(key, draft)

    def comment(self, ref: TicketRef, text: str) -> None:
        self._check()
        super().comment(ref, text)


def test_writes_wait_and_are_delivered_in_order_by_the_next_operation(tmp_path: Path) -> None:
    backend = Flaky(tmp_path / "tickets")
    client = TicketClient(backend, tmp_path / "state", retry_after=0)
    backend.down = True

    queued = [client.open("inc-9", TicketDraft(title="Credential misuse", body="Locked: x")),
              client.comment("inc-9", "first"), client.comment("inc-9", "second")]
    backend.down = False
    last = client.comment("inc-9", "third")

    assert [q.status for q in queued] == ["queued"] * 3
    assert [q.pending for q in queued] == [1, 2, 3]
    assert last.status == "delivered"
    [ticket] = backend.tickets("inc-9")
    assert [c["text"] for c in ticket["comments"]] == ["first", "second", "third"]
    assert client.outbox.pending("inc-9") == []


def test_delivery_stops_at_the_first_write_that_still_fails(tmp_path: Path) -> None:
    backend = Flaky(tmp_path / "tickets")
    client = TicketClient(backend, tmp_path / "state", retry_after=0)
    backend.down = True
    client.open("inc-10", TicketDraft(title="t"))
    client.comment("inc-10", "a")

    assert client.deliver() == {"delivered": 0, "pending": 2}
    backend.down = False
    assert client.deliver() == {"delivered": 2, "pending": 0}
    assert client.deliver() == {"delivered": 0, "pending": 0}


def test_an_entry_delivered_just_before_a_crash_is_not_delivered_twice(tmp_path: Path) -> None:
    """Delivered, then the process died before removing the outbox file: the ledger's op id stops a repeat."""
    backend = Flaky(tmp_path / "tickets")
    client = TicketClient(backend, tmp_path / "state", retry_after=0)
    backend.down = True
    client.open("inc-11", TicketDraft(title="t"))
    client.comment("inc-11", "only once")
    entries = client.outbox.pending("inc-11")
    backend.down = False
    saved = [(e.path, e.path.read_bytes()) for e in entries]
    client.deliver()
    for path, data in saved:  # the files come back, as if the removal never happened
        path.write_bytes(data)

    TicketClient(backend, tmp_path / "state").deliver()

    [ticket] = backend.tickets("inc-11")
    assert [c["text"] for c in ticket["comments"]] == ["only once"]


_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from tourniquet.connectors.tickets.rt import RequestTracker
    from tourniquet.connectors.tickets import TicketClient, TicketDraft, TicketsConfig
    state = Path(sys.argv[1])
    config = TicketsConfig.model_validate({"kind": "rt", "url": sys.argv[2], "token": {"env": "RT_TOKEN"},
                                           "timeout": 2})
    client = TicketClient(RequestTracker(config), state)
    print("queued", client.open("inc-kill", TicketDraft(title="Credential misuse", body="Locked: x")).status,
          flush=True)
    n = 0
    while True:
        n += 1
        client.comment("inc-kill", f"update {n}")
        print("queued", n, flush=True)
""")


def test_nothing_queued_is_lost_when_the_process_is_killed(tmp_path: Path, unused_port: int) -> None:
    """A run queues writes against an unreachable ticket system and is SIGKILLed mid-way:
    every write it reported as queued is still there, whole, in order, and is delivered in order."""
    state = tmp_path / "state"
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(state), f"http://127.0.0.1:{unused_port}/rt"],
        stdout=subprocess.PIPE, text=True, env={"RT_TOKEN": "secret-token-for-test", "PATH": "/usr/bin:/bin"},
    )
    assert writer.stdout is not None
    reported = []
    deadline = time.monotonic() + 60
    while len(reported) < 25 and time.monotonic() < deadline:
        line = writer.stdout.readline()
        if not line:
            break
        if line.startswith("queued "):  # other lines are the connector's log
            reported.append(line.split()[1])
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)

    pending = Outbox(state, "tickets-rt").pending("inc-kill")

    assert len(reported) == 25, "the writer did not get going"
    texts = [e.payload.get("text") for e in pending[1:]]
    assert pending[0].operation == "open"
    assert texts[:24] == [f"update {n}" for n in range(1, 25)], "everything reported queued survived, in order"
    assert [e.seq for e in pending] == list(range(1, len(pending) + 1))

    # The system comes back (here: the same outbox delivered to a file store under the same stream name).
    class Back(FileStore):
        system = "rt"

    client = TicketClient(Back(tmp_path / "tickets"), state)
    assert client.deliver()["pending"] == 0
    [ticket] = Back(tmp_path / "tickets").tickets("inc-kill")
    assert [c["text"] for c in ticket["comments"]] == texts


@pytest.fixture
def unused_port() -> int:
    from tests.rt import free_port

    return free_port()


def test_deliver_outbox_flow(prefect_harness: None, tmp_path: Path, slapd: Slapd, practitioners: Directory,
                             unused_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The deliver-outbox Prefect flow reports what it delivered and what still waits."""
    from tourniquet.connectors.tickets import TicketsConfig
    from tourniquet.connectors.tickets.rt import RequestTracker
    from tourniquet.flows.outbox import deliver_outbox

    url = f"http://127.0.0.1:{unused_port}/rt"
    site_file = write_site(tmp_path, slapd, practitioners, tickets={"kind": "rt", "url": url,
                                                                    "token": {"env": "RT_TOKEN_TEST"}, "timeout": 2})
    config = TicketsConfig.model_validate(yaml.safe_load(site_file.read_text())["tickets"])
    monkeypatch.setenv("RT_TOKEN_TEST", "token-for-test")
    client = TicketClient(RequestTracker(config), tmp_path / "state")
    client.open("inc-flow", TicketDraft(title="t"))

    result = deliver_outbox(site=str(site_file))

    assert result == {"delivered": 0, "pending": 1}


def test_outbox_command_lists_what_waits(tmp_path: Path, slapd: Slapd, practitioners: Directory,
                                         unused_port: int, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """`tourniquet outbox` shows each incident's waiting writes; `--deliver` exits 1 while the system is down."""
    from tourniquet.cli.main import main
    from tourniquet.connectors.tickets import TicketsConfig
    from tourniquet.connectors.tickets.rt import RequestTracker

    monkeypatch.setenv("RT_TOKEN_TEST", "token-for-test")
    tickets = {"kind": "rt", "url": f"http://127.0.0.1:{unused_port}/rt", "token": {"env": "RT_TOKEN_TEST"},
               "timeout": 2}
    site_file = write_site(tmp_path, slapd, practitioners, tickets=tickets)
    client = TicketClient(RequestTracker(TicketsConfig.model_validate(tickets)), tmp_path / "state")
    client.open("inc-cli", TicketDraft(title="t"))
    client.comment("inc-cli", "c")

    listed = main(["outbox", "--site", str(site_file)])
    out = capsys.readouterr().out
    delivered = main(["outbox", "--deliver", "--site", str(site_file)])

    assert listed == 0 and delivered == 1
    assert "inc-cli: 2 waiting for rt" in out
    assert "   1 open" in out and "   2 comment" in out


def test_a_run_stops_knocking_once_the_system_is_down(tmp_path: Path) -> None:
    """After one transient failure the client queues without calling the system again for retry_after
    seconds: a run's later ticket steps do not each wait for a network timeout."""
    backend = Flaky(tmp_path / "tickets")
    calls: list[str] = []
    original = backend._check

    def counting() -> None:
        calls.append("call")
        original()

    backend._check = counting  # type: ignore[method-assign]
    client = TicketClient(backend, tmp_path / "state", retry_after=3600)
    backend.down = True

    client.open("inc-12", TicketDraft(title="t"))
    client.comment("inc-12", "b")
    client.comment("inc-12", "c")

    assert len(calls) == 1
    assert [e.operation for e in client.outbox.pending("inc-12")] == ["open", "comment", "comment"]
