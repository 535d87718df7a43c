"""What a hygiene run hands back and leaves on disk: the findings (spooled, then sorted), the result,
``findings.md`` and ``summary.json``.

Imports only the findings model; imported by the runner (which fills a :class:`HygieneResult`),
the package namespace, the CLI and the Prefect flow (which render it as artifacts).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

from tourniquet.hygiene.findings import SEVERITIES, Finding

__all__ = ["FindingStore", "HygieneResult", "render_markdown", "write_outputs", "MARKDOWN_ROWS"]

MARKDOWN_ROWS = 200


class FindingStore:
    """Findings spooled to disk as they come, sorted at the end (most severe first).

    A first run on a big directory can raise a finding for most of its 100,000 entries (dormant):
    only a sort key and a file offset per finding stay in memory.
    """

    def __init__(self, folder: Path) -> None:
        self.spool_path = folder / "findings.unsorted.jsonl"
        self._spool = self.spool_path.open("w+b")
        self._keys: list[tuple[int, str, str, int]] = []
        self.counts: dict[str, int] = {s: 0 for s in reversed(SEVERITIES)}
        self.path: Path | None = None

    def add(self, finding: Finding) -> None:
        offset = self._spool.tell()
        self._spool.write(finding.model_dump_json().encode("utf-8") + b"\n")
        self._keys.append((-finding.severity.rank, finding.check, finding.account, offset))
        self.counts[finding.severity.value] += 1

    def __len__(self) -> int:
        return len(self._keys)

    def finish(self, path: Path) -> None:
        """Write ``path`` in order, most severe first; drop the spool."""
        self._keys.sort()
        self._spool.flush()
        with path.open("wb") as out:
            for *_, offset in self._keys:
                self._spool.seek(offset)
                out.write(self._spool.readline())
        self._spool.close()
        self.spool_path.unlink()
        self._keys = []
        self.path = path

    def close(self) -> None:
        if not self._spool.closed:
            self._spool.close()

    def __iter__(self) -> Iterator[Finding]:
        if self.path is None:
            raise RuntimeError("findings are read once they are sorted")
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                yield Finding.model_validate_json(line)


@dataclass
class HygieneResult:
    playbook: str
    as_of: datetime
    run_dir: Path
    store: FindingStore
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    responses: list[dict[str, Any]] = field(default_factory=list)
    accounts_swept: int = 0
    findings_file: Path | None = None
    markdown_file: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase

    def iter_findings(self) -> Iterator[Finding]:
        """Every finding, most severe first, read back from ``findings.jsonl`` (streaming)."""
        return iter(self.store)

    @property
    def findings(self) -> list[Finding]:
        """All findings in memory: for tests and small runs; big runs use :meth:`iter_findings`."""
        return list(self.store)

    @property
    def finding_count(self) -> int:
        return sum(self.store.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {"playbook": self.playbook, "as_of": self.as_of.isoformat(), "run_dir": str(self.run_dir),
                "accounts_swept": self.accounts_swept, "findings": self.finding_count,
                "severities": self.store.counts, "checks": self.checks,
                "responses": self.responses, "findings_file": str(self.findings_file),
                "summary_file": str(self.markdown_file), "timings": self.timings}


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(result: HygieneResult) -> str:
    counts = result.store.counts
    total = result.finding_count
    lines = [f"# Hygiene: {result.playbook} — {result.as_of:%Y-%m-%d %H:%M} UTC", "",
             f"{result.accounts_swept} directory accounts swept, **{total} findings** "
             f"({', '.join(f'{n} {s}' for s, n in counts.items() if n) or 'none'}).", "",
             "## Checks", "", "| check | kind | status | findings | evidence |", "|---|---|---|---|---|"]
    for check_id, info in result.checks.items():
        status = info["status"] + (f": {info['error']}" if info.get("error") else "")
        lines.append(f"| {check_id} | {info['kind']} | {_cell(status)} | {info['findings']} | "
                     f"`{info.get('evidence', '')}` |")
    warnings = [(c, w) for c, info in result.checks.items() for w in info.get("warnings") or []]
    if warnings:
        lines += ["", "## Warnings", ""] + [f"- {c}: {_cell(w)}" for c, w in warnings]
    lines += ["", "## Findings", ""]
    if total:
        lines += ["| severity | account | check | what | suggested | evidence |", "|---|---|---|---|---|---|"]
        for f in islice(result.iter_findings(), MARKDOWN_ROWS):
            lines.append(f"| {f.severity.value} | {_cell(f.account)} | {f.check} | {_cell(f.summary)} | "
                         f"{f.suggested_playbook or ''} | `{f.evidence_ref}` |")
        if total > MARKDOWN_ROWS:
            lines.append(f"\n… {total - MARKDOWN_ROWS} more in `findings.jsonl`.")
    else:
        lines.append("None.")
    if result.responses:
        lines += ["", "## Response runs", ""]
        for r in result.responses:
            what = "dry-run plan" if r["mode"] == "dry-run" else "real run"
            approval = r.get("approval")
            extra = f"; approval: {'yes' if approval['approved'] else 'no'} {approval['comment']}" if approval else ""
            lines.append(f"- {what} of `{r['playbook']}` for {', '.join(r['accounts'])}: {r.get('status')}"
                         f"{' (' + str(r['error']) + ')' if r.get('error') else ''}{extra}"
                         f"{'; plan: `' + r['plan'] + '`' if r.get('plan') else ''}")
    if result.timings:
        lines += ["", "## Timings", "", "| phase | seconds |", "|---|---|"]
        lines += [f"| {name} | {seconds:.2f} |" for name, seconds in result.timings.items()]
    lines += ["", "## Evidence", "", f"- run folder: `{result.run_dir}`", "- findings: `findings.jsonl`",
              "- each check: `evidence/<check>.json` (query, window, counts, register file and date)"]
    return "\n".join(lines) + "\n"


def write_outputs(result: HygieneResult) -> None:
    """``findings.md`` (the summary a responder reads) and ``summary.json`` in the run folder."""
    result.markdown_file = result.run_dir / "findings.md"
    result.markdown_file.write_text(render_markdown(result), encoding="utf-8")
    (result.run_dir / "summary.json").write_text(json.dumps(result.as_dict(), indent=2, default=str), encoding="utf-8")
