"""The national figures: per region and in total, each person once when the regions share a national id.

Without a shared national identifier (or with regions hashing it under different keys) the total is
an upper bound, and says so, with a lower bound beside it (the largest group of people sure to be
distinct). :func:`render_markdown` is what the ministry's delegate reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog

from tourniquet.national.people import PeopleCounter
from tourniquet.national.reading import NO_ACCOUNT, RegionFigures, RegionSource, read_region
from tourniquet.secrets import mask

__all__ = ["NationalSummary", "summarise", "render_markdown", "CATEGORY_ORDER"]

log = structlog.get_logger("tourniquet")

#: How the report orders the categories it has (any other after them, alphabetically).
CATEGORY_ORDER = ("identity", "contact", "social_security_number", "health")


@dataclass
class NationalSummary:
    """The figures per region and for the nation, and in words how far the total can be trusted."""

    incident: str
    regions: list[RegionFigures]
    accounts: int = 0
    records: int = 0
    people: int = 0
    people_by_category: dict[str, int] = field(default_factory=dict)
    in_several_regions: int = 0
    at_least: int = 0
    #: every person counted once (all of them carry a national identifier hashed under one key)
    exact: bool = False
    #: every region of the incident counted
    complete: bool = False
    explanation: str = ""

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


def summarise(incident: str, sources: Sequence[RegionSource]) -> NationalSummary:
    """Read each region's sealed scope and count: per region, and nationally with each person once."""
    counter = PeopleCounter()
    regions = [read_region(source, incident, counter) for source in sources]
    people, by_category, several, unmatched = counter.totals()
    counted = [r for r in regions if r.counted]
    summary = NationalSummary(incident=incident, regions=regions, people=people, people_by_category=by_category,
                              in_several_regions=several,
                              accounts=sum(len(r.accounts) for r in regions),
                              records=sum(r.records or 0 for r in counted),
                              at_least=max([r.people or 0 for r in counted] + [counter.largest_group()]))
    summary.exact = unmatched == 0 and len(counter.keys) <= 1
    summary.complete = bool(counted) and all(r.counted for r in regions if r.status != NO_ACCOUNT)
    summary.explanation = _explain(summary, counter, unmatched)
    log.info("national.summary", people=people, exact=summary.exact, complete=summary.complete,
             in_several_regions=several)
    return summary


def _explain(summary: NationalSummary, counter: PeopleCounter, unmatched: int) -> str:
    words = []
    if summary.exact:
        fields = sorted({r.national_id for r in summary.regions if r.counted and r.national_id})
        words.append(f"each person counted once across regions (by keyed hash of {', '.join(fields) or 'the national id'})")
    else:
        reasons = []
        if unmatched:
            reasons.append(f"{unmatched} without a national identifier in their region's record (or in a region "
                           "that has none configured), counted once per region where seen")
        if len(counter.keys) > 1:
            reasons.append("the regions hash the national identifier under different keys, so their people cannot "
                           "be matched")
        words.append(f"an upper bound: at most {summary.people} people, at least {summary.at_least}; "
                     + "; ".join(reasons))
    missing = [f"{r.region} ({r.status}{': ' + r.problems[0] if r.problems else ''})"
               for r in summary.regions if not r.counted and r.status != NO_ACCOUNT]
    if missing:
        words.append(f"incomplete: not counted: {'; '.join(missing)}")
    return "; ".join(words)


def render_markdown(summary: NationalSummary, *, status: str, problems: Sequence[str] = ()) -> str:
    """The national summary as the ministry's delegate reads it: regions, people, and what proves it."""
    seen = {c for r in summary.regions for c in r.people_by_category} | set(summary.people_by_category)
    categories = [c for c in CATEGORY_ORDER if c in seen] + sorted(seen - set(CATEGORY_ORDER))
    lines = [f"# Incident {summary.incident}: national summary", "",
             f"Status across {len(summary.regions)} regions: **{status}**.", "",
             "| region | status | accounts | records | people | " + " | ".join(categories) + " | sealed as |",
             "|---|---|---|---|---|" + "---|" * len(categories) + "---|"]
    for region in summary.regions:
        cells = [str(region.people_by_category.get(c, 0)) if region.counted else "—" for c in categories]
        root = f"{region.seal['manifest']} `{str(region.seal['root'])[:16]}…`" if region.seal else "—"
        lines.append(f"| {_cell(region.region)} | {_cell(region.status)} | {len(region.accounts)} | "
                     f"{region.records if region.counted else '—'} | {region.people if region.counted else '—'} | "
                     + " | ".join(cells) + f" | {root} |")
    total = [str(summary.people_by_category.get(c, 0)) for c in categories]
    people = str(summary.people) if summary.exact else f"at most {summary.people}"
    lines += [f"| **nation** | | {summary.accounts} | {summary.records} | **{people}** | " + " | ".join(total) + " | |",
              "", f"People: {summary.explanation}.",
              f"People seen in more than one region (counted once): {summary.in_several_regions}.", ""]
    if problems:
        lines += ["## Not done", ""] + [f"- {p}" for p in problems] + [""]
    noted = [(r.region, p) for r in summary.regions for p in r.problems]
    if noted:
        lines += ["## Regions' bundles", ""] + [f"- {region}: {p}" for region, p in noted] + [""]
    lines += ["## What this proves", "",
              "Each region's figures are read from its own sealed evidence bundle: the scope files counted here "
              "(`scope.json`, `subjects.csv`) have the SHA-256 its latest manifest lists, and this summary's journal "
              "records that manifest's name, SHA-256 and root. `tourniquet evidence verify` with the same sites "
              "checks this folder and that each regional seal is still there, unchanged. People are compared by the "
              "keyed hash each region wrote, never by their national identifier, which appears nowhere here.", ""]
    for region in summary.regions:
        if region.seal:
            lines.append(f"- {region.region}: `{region.evidence}` {region.seal['manifest']}, root `{region.seal['root']}`")
    return mask("\n".join(lines) + "\n")


def _cell(text: str) -> str:
    """Text for a Markdown table cell: a '|' or a line break in a name would break the table."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
