"""A picture of the attack: accesses per day per account, the anomalous part marked, the window drawn.

People read a timeline faster than a table. One row per account (the ten busiest when there are more),
bars per day — the owner's usual work in grey-blue, the accesses that do not fit their history in red
(before the window, as the daily walk counted them, hatched) — the window shaded and its start drawn,
the detected start dashed. matplotlib (the ``plots`` extra) with the Agg backend (no display); the PNG carries no creation
date, so the same scope draws the same bytes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from tourniquet.extras import require
from tourniquet.scope import Scope

__all__ = ["draw_timeline", "MAX_ACCOUNTS"]

MAX_ACCOUNTS = 10
USUAL, ODD, BEFORE = "#7a9cc6", "#d7301f", "#bdbdbd"


def draw_timeline(scope: Scope, path: Path, labels: dict[str, str], *, title: str = "") -> Path | None:
    """Write the PNG; None when there is nothing to draw (no access at all).

    Raises :class:`~tourniquet.extras.MissingExtra` (one line naming the ``plots`` extra) without matplotlib.
    """
    if not scope.timeline:
        return None
    require("matplotlib", "plots", "the timeline picture")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    busiest = sorted(scope.accounts, key=lambda a: -a.events)[:MAX_ACCOUNTS]
    rows = [a for a in scope.accounts if a in busiest]
    figure, axes = plt.subplots(len(rows), 1, figsize=(11, 0.6 + 1.5 * len(rows)), sharex=True, squeeze=False)
    first_day = min(t.day for t in scope.timeline)
    for axis, account in zip(axes[:, 0], rows):
        days = [t for t in scope.timeline if t.account == account.account]
        when = [datetime(t.day.year, t.day.month, t.day.day) for t in days]
        usual = [t.events - t.anomalous for t in days]
        odd = [t.anomalous for t in days]
        colours = [USUAL if t.in_window else BEFORE for t in days]
        axis.bar(when, usual, width=0.9, color=colours, linewidth=0)
        axis.bar(when, odd, bottom=usual, width=0.9, color=ODD, linewidth=0,
                 hatch=None, label="accès non cohérents avec l'historique")
        for t, bar in zip(days, axis.patches[len(days):]):
            if not t.in_window:
                bar.set_hatch("///")
                bar.set_alpha(0.6)
        if account.since is not None:
            start = account.since.replace(tzinfo=None)
            axis.axvspan(start, (account.until or scope.until).replace(tzinfo=None), color="#fff3cd", zorder=0)
            axis.axvline(start, color="#8a6d3b", linewidth=1)
        if account.attack_start is not None:
            axis.axvline(account.attack_start.replace(tzinfo=None), color=ODD, linewidth=1, linestyle="--")
        axis.set_ylabel(labels.get(account.account, account.account), rotation=0, ha="right", va="center",
                        fontsize=9)
        axis.tick_params(labelsize=8)
        axis.spines[["top", "right"]].set_visible(False)
    last = axes[-1, 0]
    last.set_xlim(datetime(first_day.year, first_day.month, first_day.day) - timedelta(days=1),
                  scope.until.replace(tzinfo=None) + timedelta(days=1))
    last.xaxis.set_major_formatter(mdates.DateFormatter("%d/%m"))
    figure.suptitle(title or "Accès par jour et par compte", fontsize=11)
    from matplotlib.patches import Patch

    figure.legend(handles=[Patch(color=USUAL, label="travail habituel du titulaire"),
                           Patch(color=ODD, label="accès non cohérents avec l'historique"),
                           Patch(color=BEFORE, label="avant la fenêtre"),
                           Patch(color="#fff3cd", label="fenêtre analysée")],
                  loc="lower center", ncol=4, fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0.05, 1, 0.97))
    figure.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(figure)
    return path
