"""Hostile input at the command line: hundreds of ids, ``-i`` values, playbooks and site files, no traceback.

An alert feeds ids in, a colleague copies a playbook from a wiki, a site file comes from a config
repo: all of it is hostile. Each input below goes through ``tourniquet.cli.main`` in-process — ids
to ``evidence verify|seal``, ``undo``, ``reinstate`` and ``plan --incident``, ``-i`` values to
``plan`` and ``run``, playbook files to ``validate``, site files to ``plan`` and ``evidence verify``
— and a few through a real subprocess (bytes that are not UTF-8 in argv, ``validate /dev/zero``).
Each ends with an exit code and a message naming the input: never a traceback, never an internal
error. The site's directory is a closed port: an input that passes every check fails fast there.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tourniquet.cli.main import main

REPO = Path(__file__).resolve().parents[1]
PLAYBOOK = str(REPO / "playbooks" / "credential-misuse.yaml")
GOOD = (REPO / "playbooks" / "credential-misuse.yaml").read_text(encoding="utf-8")

HOSTILE_IDS = [
    "", " ", "..", ".", "../x", "../../etc/passwd", "a/b", "/abs", "inc 1", "inc\t1", "inc\n1", "inc\r1",
    "inc\x00", "inc\x1b[31m", "inc\udcff", "\udcc3\udca9", "inc\ud800", "\ud83d", "inc\u202e", "inc\u200b",
    "é", "ınc", "ｉｎｃ", "inc*", "inc?", "inc[1]", "inc{1}", "inc$HOME", "$(id)", "`id`", "inc;rm -rf",
    "inc|x", "inc>x", "inc<x", "inc&x", "'inc'", '"inc"', "inc\\x", "-x", "--site", "-", "_inc", ".inc",
    ":inc", "inc" * 60, "x" * 129, "x" * 10_000, "%2e%2e%2f", "inc%00", "inc\x7f", "\ufeffinc",
    "inc\u0301", "i" * 128 + "/", "☠", "inc\U0001f600", "\\\\server\\share", "inc//", "inc/.",
]
#: ids that are fine: they must pass the id check and fail later, naming something else, or succeed
FINE_IDS = ["CON", "INC-1", "inc-20250101-abcd1234", "a", "A.b_c:d-e", "9" * 128]
HOSTILE_VALUES = [
    "[" * 60_000, "[" * 9 + "]" * 9, "{" * 50_000, '["a", ["b"]]', '["a", {"b": 1}]', "[1, 2]", "[true]",
    '["a"', "[a, b]", '{"a": 1}', "null", "[null]", '[""]', "", ",,,", " , , ", "a\udcffb", "a\ud800",
    "a\x00b", "a\x1bb", "\ufeffa", ",".join(["x"] * 20_000), "x" * (2 << 20), '["' + "x" * (2 << 20) + '"]',
    '["\\ud800"]', '["\\u0000"]', '["a\\nb"]', "[1e999]", "[" + "1," * 5000 + "1]", '["' + '","'.join(["y"] * 10_001) + '"]',
    "*)(uid=*", "uid=*,ou=people", "(&(objectClass=*))", "a,b,c", "${{ 1 }}", "$(id)", '["a"]' + " " * 10,
]
#: malformed -i options (no '=' or a bad name)
HOSTILE_PAIRS = ["accounts", "=x", "\udcff=x", "acc ounts=x", "accounts\x00=x", "a" * 100 + "=x", "ACC-=x",
                 "nope=1", "accounts=a", "since=-30d", "since=yesterday", "since=" + "9" * 5000, "reason=\udcff"]


def _playbooks() -> list[tuple[str, bytes]]:
    deep = "playbook: x\nversion: 1\ntitle: t\nsteps: " + "[" * 5000 + "]" * 5000 + "\n"
    aliases = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8))
    terms = GOOD.replace('ids: ${{ inputs.accounts }}', "ids: ${{ " + " + ".join(["inputs.accounts"] * 20_000) + " }}")
    nested = GOOD.replace('ids: ${{ inputs.accounts }}', "ids: ${{ " + "(" * 150 + "inputs.accounts" + ")" * 150 + " }}")
    listy = "playbook: x\nversion: 1\ntitle: t\nsteps: [" + ", ".join(["{}"] * 400_000) + "]\n"
    found: list[tuple[str, bytes]] = [
        ("empty", b""), ("nul bytes", b"\x00" * 1000), ("not utf-8", b"playbook: \xff\xfe\n"),
        ("utf-16", GOOD.encode("utf-16")), ("binary", bytes(range(256)) * 40), ("deep brackets", deep.encode()),
        ("billion laughs", aliases.encode()), ("20000-term expression", terms.encode()),
        ("nested parentheses", nested.encode()), ("one-line list of 400000 items", listy.encode()),
        ("2 MB comment", b"# " + b"x" * (2 << 20) + b"\n" + GOOD.encode()), ("python tag", b"!!python/object:os.system x"),
        ("lone surrogate escape", GOOD.replace("title: Contain", 'title: "\\ud800 Contain').replace(
            "else\n", 'else"\n', 1).encode()),
        ("surrogate in an argument", GOOD.replace('message: "Credential', 'message: "\\udcff Credential').encode()),
        ("control character", GOOD.replace("title: Contain", 'title: "\\x07Contain"  #').encode()),
        ("duplicate keys", b"playbook: x\nplaybook: y\nversion: 1\ntitle: t\nsteps: []\n"),
        ("a list", b"- a\n- b\n"), ("a scalar", b"hello"), ("tabs", b"playbook:\t x\n\tversion: 1\n"),
        ("huge int", b"playbook: x\nversion: " + b"9" * 10_000 + b"\n"), ("anchors loop", b"a: &a [*a]\n"),
        ("hygiene header then junk", b"hygiene: x\n" + b"\xff" * 10), ("hygiene deep", b"hygiene: x\nchecks: " + b"[" * 3000),
        ("many documents", b"---\na: 1\n" * 2000), ("long line", b"playbook: " + b"x" * 900_000 + b"\n"),
    ]
    for depth in (10, 63, 65, 200, 1000):
        found.append((f"flow depth {depth}", ("steps: " + "[" * depth + "]" * depth).encode()))
    for cut in range(1, len(GOOD), max(1, len(GOOD) // 60)):
        found.append((f"cut at {cut}", GOOD[:cut].encode()))
    return found


def _sites(tmp: Path) -> list[tuple[str, bytes]]:
    base = yaml.safe_load(_site_text(tmp))
    found = [
        ("empty", b""), ("scalar", b"x"), ("list", b"- 1\n"), ("nul", b"\x00" * 64), ("not utf-8", b"site: \xff\n"),
        ("deep", b"site: " + b"[" * 50_000), ("deep mapping", b"a:\n" + b"".join(b" " * i + b"b:\n" for i in range(1, 3000))),
        ("billion laughs", ("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8))
            + "site: s\ndirectory: *i\n").encode()),
        ("inline secret", _dump({**base, "directory": {**base["directory"], "bind_password": "hunter2"}})),
        ("unknown key", _dump({**base, "extra": 1})), ("no directory", _dump({k: v for k, v in base.items() if k != "directory"})),
        ("bad flavor", _dump({**base, "directory": {**base["directory"], "flavor": "ldapx"}})),
        ("bad url", _dump({**base, "directory": {**base["directory"], "url": "\udcff"}})),
        ("env var unset", _site_text(tmp).replace("ldap://127.0.0.1:9", "${NOPE_NOT_SET}").encode()),
        ("env var injection", _site_text(tmp).replace("ldap://127.0.0.1:9", "${HOME}\n  evil: 1").encode()),
        ("python tag", b"site: !!python/object/apply:os.system [id]\n"), ("huge", b"site: " + b"x" * (3 << 20)),
        ("limits wrong type", _dump({**base, "limits": {"max_accounts_ceiling": "many"}})),
        ("limits negative", _dump({**base, "limits": {"max_accounts_ceiling": -5}})),
        ("tickets unknown kind", _dump({**base, "tickets": {"kind": "bugzilla"}})),
        ("tickets rt without url", _dump({**base, "tickets": {"kind": "rt"}})),
        ("identity http", _dump({**base, "identity": {"kind": "keycloak", "url": "http://x", "realm": "r",
                                                      "client_id": "c", "client_secret": {"env": "X"}}})),
        ("audit unknown", _dump({**base, "audit": {"kind": "oracle"}})),
        ("secret two refs", _dump({**base, "directory": {**base["directory"], "bind_password": {"env": "A", "file": "b"}}})),
        ("state_dir a file", _dump({**base, "state_dir": str(tmp / "site-0.yaml")})),
        ("duplicate keys", b"site: a\nsite: b\n"), ("tabs", b"site:\t a\n"),
        ("surrogate escape", _site_text(tmp).replace("site: fuzz", 'site: "\\ud800"').encode()),
        ("huge number", _site_text(tmp).replace("timeout: 1", "timeout: 1" + "0" * 5000).encode()),
    ]
    for cut in range(1, len(_site_text(tmp)), max(1, len(_site_text(tmp)) // 30)):
        found.append((f"cut at {cut}", _site_text(tmp)[:cut].encode()))
    return found


def _site_text(tmp: Path) -> str:
    return f"""site: fuzz
state_dir: {tmp / 'state'}
evidence_dir: {tmp / 'evidence'}
directory:
  url: ldap://127.0.0.1:9
  allow_plaintext: true
  bind_dn: cn=admin,dc=x
  bind_password: {{env: TOURNIQUET_FUZZ_UNSET}}
  base_dn: ou=people,dc=x
  timeout: 1
tickets: {{kind: file, path: {tmp / 'tickets'}}}
"""


def _dump(data: object) -> bytes:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


Cli = Callable[..., Outcome]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    # Many in-process commands in one pytest process: Prefect's console handler, made by the first one,
    # still writes to an earlier test's closed capture. That is pytest's doing (a real process has one
    # stderr): keep logging's own "--- Logging error ---" report out of what is checked here. The
    # subprocess cases below check a real process's whole output.
    monkeypatch.setattr(logging, "raiseExceptions", False)

    def run(*argv: str) -> Outcome:
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse refusing an argument: usage and the reason, on stderr
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        outcome = Outcome(code, captured.out, captured.err)
        assert "Traceback" not in outcome.text and "internal error" not in outcome.text, (argv[:4], outcome.text[-2000:])
        return outcome

    yield run


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "tourniquet.yaml"
    path.write_text(_site_text(tmp_path))
    return path


def _named(text: str, *names: str) -> bool:
    return any(name in text for name in names)


def test_fuzz_inputs_are_at_least_three_hundred(tmp_path: Path) -> None:
    commands_per_id = 5
    count = (len(HOSTILE_IDS) * commands_per_id + len(HOSTILE_VALUES) * 2 + len(HOSTILE_PAIRS)
             + len(_playbooks()) + len(_sites(tmp_path)) * 2)
    assert count >= 300, count


@pytest.mark.parametrize("command", [["evidence", "verify"], ["evidence", "seal"], ["undo"], ["reinstate"],
                                     ["conclude", "--by", "dr-rssi", "--finding", "phishing"],
                                     ["recover", "--account", "jdupont", "--password-file", "/nonexistent/otp"]])
def test_hostile_incident_ids_are_refused_by_name(command: list[str], cli: Cli, site: Path) -> None:
    for hostile in HOSTILE_IDS:
        outcome = cli(*command, hostile, "--site", str(site))
        assert outcome.code == 2, (hostile, outcome.text)
        if hostile.startswith("-"):  # taken for an option: argparse names the missing incident
            assert "arguments are required: incident" in outcome.err or "incident" in outcome.err, outcome.err
            continue
        assert "argument incident: incident id" in outcome.err, (hostile, outcome.err)
        assert ascii(hostile)[1:-1][:40] in outcome.err, (hostile, outcome.err)
    for fine in FINE_IDS:
        outcome = cli(*command, fine, "--site", str(site))
        assert "argument incident" not in outcome.err and outcome.code in (0, 1, 2), (fine, outcome.text)


def test_hostile_incident_ids_for_plan_are_refused_by_name(cli: Cli, site: Path) -> None:
    for hostile in HOSTILE_IDS:
        outcome = cli("plan", PLAYBOOK, "--site", str(site), "-i", "accounts=a", "--incident", hostile)
        assert outcome.code == 2 and "argument --incident" in outcome.err, (hostile, outcome.text)


def test_hostile_input_values_are_refused_naming_the_input(cli: Cli, site: Path) -> None:
    refused = 0
    for value in HOSTILE_VALUES:
        outcome = cli("plan", PLAYBOOK, "--site", str(site), "-i", f"accounts={value}", "--incident", "INC-F")
        assert outcome.code in (1, 2), (value[:80], outcome.text[-500:])
        assert _named(outcome.text, "input 'accounts'", "inputs.accounts", "accounts"), (value[:80], outcome.text)
        assert len(outcome.text) < 20_000, "an error quotes the input, never all of it"
        if outcome.code == 2:  # refused as input: `run` refuses it too, before any flow run starts
            refused += 1
            again = cli("run", PLAYBOOK, "--site", str(site), "-i", f"accounts={value}", "--incident", "INC-F")
            assert again.code == 2 and again.err == outcome.err, (value[:80], again.text[-500:])
    assert refused >= 20
    for pair in HOSTILE_PAIRS:
        outcome = cli("plan", PLAYBOOK, "--site", str(site), "-i", pair, "-i", "accounts=a")
        assert outcome.code in (1, 2), (pair[:80], outcome.text[-500:])
        name = pair.split("=", 1)[0]
        assert _named(outcome.text, "--input", "input", ascii(name)[1:-1][:30]), (pair[:80], outcome.text)


def test_too_many_inputs_are_refused(cli: Cli, site: Path) -> None:
    args = [x for i in range(150) for x in ("-i", f"accounts=a{i}")]
    outcome = cli("plan", PLAYBOOK, "--site", str(site), *args)
    assert outcome.code == 2 and "MAX_INPUTS" in outcome.err


def test_hostile_playbooks_are_refused_naming_the_file(cli: Cli, tmp_path: Path) -> None:
    for index, (name, data) in enumerate(_playbooks()):
        path = tmp_path / f"playbook-{index}.yaml"
        path.write_bytes(data)
        outcome = cli("validate", str(path))
        assert outcome.code in (0, 1), (name, outcome.text[-500:])
        if outcome.code == 1:
            assert str(path) in outcome.err, (name, outcome.err[-500:])
        assert len(outcome.text) < 200_000, name


def test_special_paths_are_refused_not_read(cli: Cli, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    for path in ("/dev/zero", "/dev/null", str(fifo), str(tmp_path), str(loop), str(tmp_path / "missing.yaml"),
                 "/proc/self/mem", "\udcff.yaml", "x" * 5000 + ".yaml"):
        outcome = cli("validate", path)
        assert outcome.code == 1, (path[:60], outcome.text)
        assert ascii(path)[1:-1][:40] in outcome.err or path[:40] in outcome.err, (path[:60], outcome.err)


def test_hostile_site_files_are_refused_naming_the_file(cli: Cli, tmp_path: Path) -> None:
    for index, (name, data) in enumerate(_sites(tmp_path)):
        path = tmp_path / f"site-{index}.yaml"
        path.write_bytes(data)
        for argv in (["plan", PLAYBOOK, "-i", "accounts=a", "--site", str(path), "--incident", "INC-S"],
                     ["evidence", "verify", "INC-S", "--site", str(path)]):
            outcome = cli(*argv)
            assert outcome.code in (1, 2), (name, argv[0], outcome.text[-500:])
            assert _named(outcome.text, str(path), "secret not set", "no evidence folder", "FAILED: cannot write",
                          "ldap://127.0.0.1:9", "TOURNIQUET_FUZZ_UNSET"), (name, argv[0], outcome.text[-800:])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=()), max_size=60)
       | st.text(max_size=60).map(lambda t: t + "\udcff"))
def test_generated_input_values_never_crash(value: str, cli: Cli, site: Path) -> None:
    outcome = cli("plan", PLAYBOOK, "--site", str(site), "-i", f"accounts={value}", "--incident", "INC-H")
    assert outcome.code in (1, 2)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400) | st.text(max_size=400).map(lambda t: ("playbook: x\n" + t).encode(
    "utf-8", "surrogatepass")))
def test_generated_playbook_bytes_never_crash(data: bytes, cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "generated.yaml"
    path.write_bytes(data)
    outcome = cli("validate", str(path))
    assert outcome.code in (0, 1) and (outcome.code == 0 or str(path) in outcome.err)


def _subprocess(*argv: str | bytes, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "tourniquet.cli.main", *argv], capture_output=True, timeout=timeout,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})


def test_hostile_input_through_a_real_process(site: Path, tmp_path: Path) -> None:
    """Bytes that are not UTF-8 in argv, /dev/zero, 60000 brackets: exit codes and messages, no traceback."""
    (tmp_path / "laughs.yaml").write_bytes(_sites(tmp_path)[7][1])
    cases: list[tuple[list[str | bytes], bytes]] = [
        ([b"evidence", b"verify", b"inc-\xff", b"--site", str(site).encode()], b"incident id 'inc-\\udcff'"),
        ([b"plan", PLAYBOOK.encode(), b"--site", str(site).encode(), b"-i", b"accounts=jdupont\xff"],
         b"input 'accounts'"),
        (["plan", PLAYBOOK, "--site", str(site), "-i", "accounts=" + "[" * 60_000], b"MAX_INPUT_DEPTH"),
        (["validate", "/dev/zero"], b"/dev/zero"),
        (["plan", PLAYBOOK, "--site", str(tmp_path / "laughs.yaml"), "-i", "accounts=a"], b"laughs.yaml"),
        (["run", PLAYBOOK, "--site", str(site), "-i", "accounts=a\x1b[2J"], b"control character"),
    ]
    for argv, expected in cases:
        result = _subprocess(*argv)
        assert result.returncode in (1, 2), (argv[:3], result.stderr[-1000:])
        assert b"Traceback" not in result.stdout + result.stderr, (argv[:3], result.stderr[-2000:])
        assert expected in result.stderr, (argv[:3], result.stderr[-1000:])
