"""How ``receiver serve`` runs its processes: one, or ``--workers N`` on one address.

With N > 1, uvicorn's supervisor (``uvicorn.supervisors.Multiprocess``) binds the
listening socket once and starts N worker processes that accept from it. Each is a
fresh interpreter (spawned, not forked) that loads the config itself and runs the whole
app: its own store (for SQLite its own writer thread and group commit), its own
outbox worker, reconciler, change-feed deliveries and pruning. Those share the
database safely because the store leases what it hands out (the same leases that let
``receiver worker`` processes run beside ``serve``). The supervisor restarts a worker
that dies, and stops (exit 1) when one cannot start. On SIGTERM or SIGINT it sends
SIGTERM to every worker and waits for all of them: each one drains as a single
process does (stops accepting, answers what it has, commits its writer's queue), so a
2xx from any worker means committed.

Why uvicorn's supervisor and not SO_REUSEPORT (a socket of its own per worker, the
kernel spreading connections by address hash): the supervisor already restarts dead
workers, stops on a failed start, fans SIGTERM out and waits, which we would otherwise
write again; and its one shared socket spread wrk's 64 keep-alive connections 35/29 over
two workers. What SO_REUSEPORT would add, an even spread of a burst of connections that
arrives while every worker is idle (libuv accepts everything queued in one go), matters
little for webhooks from many providers.

What stays per process (README "Scaling out"): ``/metrics`` (each scrape is answered by
one worker, with its own counters), send rate limits and Idempotency-Keys in flight
(receiver.services.admission), each provider's send rate and 429 pauses
(receiver.outbound.worker), the console's password-attempt limits
(receiver.console.passwords), and the wake-up of SSE streams and deliveries on a
commit (a change committed by another worker is picked up by their polls instead).

On SQLite ``serve`` refuses N > 1 unless RECEIVER_SQLITE_WORKERS=1: two workers measured
no faster than one there (docs/performance.md, "Several workers on SQLite"). PostgreSQL
takes any N.
"""

from __future__ import annotations

import faulthandler
import gc
import os
import signal
import sys
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from receiver import logs
from receiver.config import load_existing

SQLITE_WORKERS_ENV = "RECEIVER_SQLITE_WORKERS"
"""Set to 1, ``serve --workers N`` runs on SQLite although it measured no faster there
(docs/performance.md): for a machine with more cores to try, the tests and the bench."""

WORKER_HEALTHCHECK_SECONDS = 30
"""How long the supervisor waits for a worker to answer its ping before it kills and
replaces it. uvicorn's default, 5 s, is shorter than a worker's start (a fresh
interpreter importing the service) on a loaded machine: with it the supervisor killed
workers that were still starting, again and again."""


def prepare_process() -> None:
    """What every serving process sets up before uvicorn runs in it: JSON-lines logs,
    tracebacks on a fatal signal, and SIGTERM as a clean exit."""
    logs.configure()
    # A fatal signal (SIGBUS from a broken SQLite mapping, SIGSEGV) still leaves a line
    # and every thread's traceback on stderr instead of a silent death.
    faulthandler.enable(all_threads=True)
    # uvicorn re-raises the SIGTERM it caught once it has drained; that is a clean exit.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))


def tune_gc() -> None:
    """Collect less often, and never again look at what start-up made.

    Every request allocates many short-lived objects; at the default threshold (700)
    the collector ran over 200 times a second, and each full collection walked every
    object the imports made, stalling every request for tens of milliseconds (the p99
    of docs/performance.md). Objects of start-up live as long as the process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(7000, 20, 20)


class WorkerConfig(uvicorn.Config):
    """uvicorn's config for the worker processes. uvicorn pickles it into each worker
    and calls ``configure_logging`` there first, before its own signal handlers: the
    place to prepare the process as ``receiver serve`` prepares its one."""

    def configure_logging(self) -> None:
        prepare_process()
        super().configure_logging()  # then uvicorn's: access_log=False silences its own


def worker_app() -> Starlette:
    """The app of one worker process (uvicorn calls this factory in each): the config
    named by RECEIVER_CONFIG, which ``run_workers`` sets."""
    from receiver.app import create_app

    app = create_app(load_existing(None))
    tune_gc()
    return app


def run_workers(config_path: Path, workers: int, options: dict[str, Any]) -> int:
    """Serve with ``workers`` processes on one listening socket until SIGTERM or SIGINT
    has drained them all; 0, or 1 if a worker could not start (it logged why)."""
    os.environ["RECEIVER_CONFIG"] = str(config_path.resolve())  # the workers inherit it
    config = WorkerConfig(
        f"{__name__}:worker_app",
        factory=True,
        workers=workers,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        **options,
    )
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    # Drained: a second SIGTERM (a service manager's, a test's) now finds the process
    # exiting, and Python gives the signals back their default action as it finalizes,
    # so it would end as killed (-15) instead of with our exit code.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return 1 if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes) else 0
