"""Evidence and hostile input: what the bounds and the strict checks cost, against bare baselines.

    nice .venv/bin/python bench/bench_evidence.py [--records 30000] [--snapshots 2000] [--skip-bare-yaml]

- ``validate`` of hostile 2 MB files (a one-line list, a 2 MB comment, a long scalar, deep nesting,
  binary) and of a 1 MB one-line list just under the size limit, each in its own process: seconds and
  peak RSS — vs ``yaml.safe_load`` of the same file in its own process (the bare parse with no bounds;
  killed after 120 s).
- ``seal`` and ``verify`` of a bundle with a journal of ``--records`` records and ``--snapshots``
  snapshot files — vs a bare SHA-256 of every file of the bundle (the least any check must do).
- ``mask`` of a 300-character log line with 1, 20 and 200 registered secrets (each in its ~16 forms)
  — vs ``str.replace`` of one raw secret.

Prints each figure and its ratio to the baseline; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# VmHWM, not ru_maxrss: a child's ru_maxrss can include the parent's size at fork time.
MEASURE = """
import re, sys, time
{setup}
start = time.perf_counter()
{body}
seconds = time.perf_counter() - start
peak = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) // 1024
print(f"{{seconds:.3f}} {{peak}}")
"""


def in_process(body: str, setup: str = "", timeout: float = 120) -> tuple[float | None, int | None, str]:
    """Seconds (imports in ``setup`` not counted) and peak RSS in MB (counted) of ``body`` in a fresh Python;
    (None, None, why) when it timed out or died."""
    try:
        result = subprocess.run([sys.executable, "-c", MEASURE.format(setup=setup, body=body)], capture_output=True,
                                text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return None, None, f"killed after {timeout:.0f} s"
    last = result.stdout.strip().splitlines()[-1:] or [""]
    try:
        seconds, rss = last[0].split()
        return float(seconds), int(rss), result.stderr.strip().splitlines()[-1:][0] if result.stderr.strip() else ""
    except ValueError:
        return None, None, (result.stderr.strip().splitlines() or ["died"])[-1][:100]


def hostile_files(folder: Path) -> dict[str, Path]:
    good = (ROOT / "playbooks" / "credential-misuse.yaml").read_text(encoding="utf-8")
    shapes = {
        "one-line list, 2 MB": "playbook: x\nversion: 1\ntitle: t\nsteps: [" + ", ".join(["{}"] * 520_000) + "]\n",
        "2 MB comment + playbook": "# " + "x" * (2 << 20) + "\n" + good,
        "2 MB scalar": "playbook: x\nversion: 1\ntitle: '" + "y" * (2 << 20) + "'\nsteps: []\n",
        "deep nesting, 2 MB": "steps: " + "[" * (1 << 20) + "]" * (1 << 20) + "\n",
        "binary, 2 MB": None,
        "one-line list, 1 MB (under the limit)": "steps: [" + ", ".join(["{}"] * 260_000) + "]\n",
    }
    files = {}
    for index, (name, text) in enumerate(shapes.items()):
        path = folder / f"hostile-{index}.yaml"
        path.write_bytes(os.urandom(2 << 20) if text is None else text.encode())
        files[name] = path
    return files


def bench_validate(folder: Path, bare: bool) -> None:
    print("validate (each in its own process): tourniquet validate vs bare yaml.safe_load")
    for name, path in hostile_files(folder).items():
        ours, ours_rss, _ = in_process(
            f"with contextlib.redirect_stderr(io.StringIO()): main(['validate', {str(path)!r}])",
            setup="from tourniquet.cli.main import main\nimport contextlib, io")
        line = f"  {name:<40} {path.stat().st_size / 1e6:4.1f} MB  tourniquet {ours:6.2f} s {ours_rss:4d} MB"
        if bare:
            base, base_rss, why = in_process(
                f"try:\n    yaml.safe_load(open({str(path)!r}, 'rb'))\nexcept Exception: pass", setup="import yaml",
                timeout=120)
            if base is None:
                line += f"   bare: {why}"
            else:
                line += f"   bare {base:6.2f} s {base_rss:4d} MB   ratio x{ours / max(base, 1e-3):.2f}"
        print(line, flush=True)
    print("  (seconds exclude the imports; peak RSS is the whole process, imports included)")


def make_bundle(folder: Path, records: int, snapshots: int) -> Path:
    """A bundle as a long incident leaves it: a long journal, many snapshots, one scope."""
    from tourniquet.journal import Journal

    bundle = folder / "evidence" / "INC-BENCH"
    (bundle / "snapshots").mkdir(parents=True)
    (bundle / "scope" / "20250101T000000Z").mkdir(parents=True)
    journal = Journal(bundle / "journal.jsonl", incident="INC-BENCH", run="bench")
    for n in range(records):
        journal.write("change", step="lock", target=f"uid{n % snapshots}", operation="lock", outcome="applied",
                      before={"pwdAccountLockedTime": []}, after={"pwdAccountLockedTime": ["000001010000Z"]})
    for n in range(snapshots):
        (bundle / "snapshots" / f"uid{n}.json").write_text(json.dumps({"dn": f"uid=uid{n},ou=people", "n": n}))
    (bundle / "scope" / "20250101T000000Z" / "scope.json").write_text("{}")
    (bundle / "report.md").write_text("# report\n")
    return bundle


def bench_seal_verify(folder: Path, records: int, snapshots: int) -> None:
    from tourniquet.evidence import AnchorLog, seal, verify

    print(f"\nseal / verify: journal of {records} records, {snapshots} snapshots (writing the bundle…)", flush=True)
    bundle = make_bundle(folder, records, snapshots)
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
    start = time.perf_counter()
    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        hashlib.sha256(path.read_bytes()).hexdigest()
    base = time.perf_counter() - start
    anchors = AnchorLog(folder / "state")
    start = time.perf_counter()
    sealed = seal(bundle, incident="INC-BENCH", anchors=anchors, note="bench")
    sealing = time.perf_counter() - start
    start = time.perf_counter()
    verdict = verify(bundle, incident="INC-BENCH", anchors=anchors)
    checking = time.perf_counter() - start
    print(f"  bundle {size / 1e6:.1f} MB; bare SHA-256 of every file {base:.2f} s")
    print(f"  seal   {sealing:6.2f} s  ratio x{sealing / base:.1f}  (root {sealed.root[:16]}…)")
    print(f"  verify {checking:6.2f} s  ratio x{checking / base:.1f}  (exit {verdict.exit_code}, "
          f"{verdict.facts['journal_records']} records)")
    _, peak, _ = in_process(
        f"verify({str(bundle)!r}, incident='INC-BENCH', anchors=AnchorLog({str(folder / 'state')!r}))",
        setup="from tourniquet.evidence import AnchorLog, verify")
    print(f"  verify in a fresh process: peak RSS {peak} MB")


def bench_mask() -> None:
    from tourniquet import secrets as masking

    print("\nmask a 300-character log line: the one masking function vs str.replace of one raw secret")
    line = ('{"event": "identity.failed", "error": "Keycloak is down (502 <html>Bad Gateway</html>)", '
            '"account": "jdupont", "incident": "inc-20250101-abcd1234", "step": "end_sessions", '
            '"url": "https://sso.example/realms/sante/protocol/openid-connect/token", "attempt": 2}')
    line = line + " " * (300 - len(line))
    raw = secrets.token_urlsafe(24)
    count = 20_000
    start = time.perf_counter()
    for _ in range(count):
        line.replace(raw, "***")
    base = (time.perf_counter() - start) / count
    registered = 0
    for wanted in (1, 20, 200):
        while registered < wanted:
            masking.register_secret(secrets.token_urlsafe(24), user="svc")
            registered += 1
        start = time.perf_counter()
        for _ in range(count):
            masking.mask(line)
        per = (time.perf_counter() - start) / count
        print(f"  {wanted:4d} secrets ({len(masking._forms):5d} forms): {per * 1e6:7.2f} µs/line   "
              f"bare replace {base * 1e6:5.2f} µs   ratio x{per / base:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=30_000)
    parser.add_argument("--snapshots", type=int, default=2_000)
    parser.add_argument("--skip-bare-yaml", action="store_true", help="do not run the (slow) bare yaml baseline")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-evidence-"))
    print(f"working in {folder}\n")
    bench_validate(folder, bare=not args.skip_bare_yaml)
    bench_seal_verify(folder, args.records, args.snapshots)
    bench_mask()


if __name__ == "__main__":
    main()
