"""The scope over sources that cannot fold in SQL (file exports, OpenSearch): the same answers, in Python.

A subclass provides :meth:`StreamSource.records` — every access of some accounts in a time range, in any
order. Groups are single events (the scope keeps one small record per person, since they do not
arrive sorted by person); the owners' caseloads are sets of (account, subject) read from their history;
daily counts read the range twice (first, when each account first saw each patient; then the counts).
Memory grows with people and caseloads, never with events.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

from tourniquet.connectors.audit.config import AuditConfig
from tourniquet.connectors.audit.events import DailyRow, HistoryRow, RawEvent, RawGroup, Span, Windows

__all__ = ["StreamSource"]


def _range(spans: dict[str, Span]) -> tuple[datetime, datetime]:
    return min(s.start for s in spans.values()), max(s.end for s in spans.values())


def _within(event: RawEvent, spans: dict[str, Span]) -> bool:
    span = spans.get(event.account)
    return span is not None and span.start <= event.timestamp < span.end


class StreamSource:
    sorted_groups = False

    def __init__(self, config: AuditConfig) -> None:
        self.config = config

    def records(self, accounts: list[str], start: datetime, end: datetime) -> Iterator[RawEvent]:
        raise NotImplementedError

    def _read(self, spans: dict[str, Span]) -> Iterator[RawEvent]:
        if not spans:
            return
        start, end = _range(spans)
        for event in self.records(list(spans), start, end):
            if _within(event, spans):
                yield event

    def _caseload(self, windows: Windows) -> set[tuple[str, str]]:
        return {(e.account, e.subject) for e in self._read(windows.history) if e.subject is not None}

    def events(self, windows: Windows) -> Iterator[RawEvent]:
        caseload = self._caseload(windows)
        for event in self._read(windows.exposure):
            known = event.subject is not None and (event.account, event.subject) in caseload
            yield RawEvent(event.timestamp, event.account, event.subject, event.action, event.fields,
                           event.source_ip, event.nir_values, known)

    def groups(self, windows: Windows) -> Iterator[RawGroup]:
        for event in self.events(windows):
            yield RawGroup(subject=event.subject, account=event.account, source_ip=event.source_ip,
                           action=event.action, fields=event.fields, nir_values=event.nir_values,
                           hour=event.timestamp.hour, count=1, first=event.timestamp, last=event.timestamp,
                           known=event.known, subject_row=None)

    def history(self, spans: dict[str, Span]) -> Iterator[HistoryRow]:
        counts: dict[tuple[str, str | None, int], int] = {}
        for event in self._read(spans):
            key = (event.account, event.source_ip, event.timestamp.hour)
            counts[key] = counts.get(key, 0) + 1
        for (account, ip, hour), count in counts.items():
            yield HistoryRow(account, ip, hour, count)

    def daily(self, spans: dict[str, Span]) -> Iterator[DailyRow]:
        first_day: dict[tuple[str, str], date] = {}
        for event in self._read(spans):
            if event.subject is not None:
                pair = (event.account, event.subject)
                day = event.timestamp.date()
                if pair not in first_day or day < first_day[pair]:
                    first_day[pair] = day
        counts: dict[tuple[str, date, str | None, int, bool | None], int] = {}
        firsts: dict[tuple[str, date, str | None, int, bool | None], datetime] = {}
        for event in self._read(spans):
            day = event.timestamp.date()
            new = None if event.subject is None else first_day.get((event.account, event.subject)) == day
            key = (event.account, day, event.source_ip, event.timestamp.hour, new)
            counts[key] = counts.get(key, 0) + 1
            if key not in firsts or event.timestamp < firsts[key]:
                firsts[key] = event.timestamp
        for key in sorted(counts, key=lambda k: k[1]):
            account, day, ip, hour, new = key
            yield DailyRow(account, day, ip, hour, new, counts[key], firsts[key])

    def close(self) -> None:
        pass
