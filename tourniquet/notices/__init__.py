"""What the SOC, the DPO and the practitioner are told, when, rendered from the journal.

``facts`` folds a run's journal records into per-account outcomes, ``compose`` writes each message
(French for the DPO and the practitioner), ``dispatch`` decides when they go out (after a run, from a
``notify.send`` step, from the deadlines check) and sends them through the site's notifier.

May import: ``connectors.notify``, ``clock``, ``journal``, ``site``. Imported by: ``actions.notify``,
``engine``, ``flows`` and ``cli``.
"""

__all__ = ["compose", "dispatch", "facts", "filings", "national"]
