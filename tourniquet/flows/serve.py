"""A served responder: ``respond`` and ``tourniquet-playbook`` run by one long-lived process, not a worker.

    TOURNIQUET_SITE=/etc/tourniquet/site.yaml .venv/bin/python -m tourniquet.flows.serve

Why: a process worker starts ``python -m prefect.engine`` for each run, which imports Prefect and
Tourniquet and loads the flow from its entrypoint before the first step — 2.5 s of a small incident's
3–6 s to the first lock (``bench/bench_latency.py``). A served flow is already imported: each run
starts in a fresh child process from the flow in memory (Prefect's runner), 1.4 s to running, and the
first account is locked within 5 s of the trigger. The deployments are ``respond/served`` and
``tourniquet-playbook/served``, with ``deadlines/served`` hourly (the worker ones in ``prefect.yaml`` stay as
they are); the runner polls
every second unless ``PREFECT_RUNNER_POLL_FREQUENCY`` says otherwise.
"""

from __future__ import annotations

import os
from typing import cast

__all__ = ["serve_responder", "DEPLOYMENT"]

#: The name of the served deployments (``respond/served``, ``tourniquet-playbook/served``).
DEPLOYMENT = "served"


def serve_responder(*, limit: int | None = None) -> None:
    """Serve both flows until interrupted (Ctrl-C, SIGTERM); at most ``limit`` runs at once."""
    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "1")  # before Prefect reads its settings
    from prefect import serve
    from prefect.deployments.runner import RunnerDeployment

    from tourniquet.flows.deadlines import DEADLINES_CRON, deadlines
    from tourniquet.flows.respond import respond, run_playbook

    # Called outside an event loop, to_deployment returns the deployment itself (its type says "or a coroutine").
    deployments = [cast(RunnerDeployment, flow.to_deployment(name=DEPLOYMENT)) for flow in (respond, run_playbook)]
    # The Art. 33 reminders, hourly, as prefect.yaml's `deadlines` deployment does for workers.
    deployments.append(cast(RunnerDeployment, deadlines.to_deployment(name=DEPLOYMENT, cron=DEADLINES_CRON)))
    serve(*deployments, limit=limit, print_starting_message=False)


if __name__ == "__main__":
    serve_responder()
