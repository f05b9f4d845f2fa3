"""Running the job queue: the `concord worker` process, a run-once mode, and a worker embedded
in `concord serve`.

All of them may run at the same time against one queue. Ordinary jobs are handed to exactly one
worker by the storage (an exclusive transaction on SQLite, SKIP LOCKED on PostgreSQL).
Periodic jobs are enqueued by the scheduler of *every* consumer, so each scheduler first
claims the (task, minute) slot in the queue's key-value store; only the winner enqueues.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime, timedelta
from typing import Any

import huey
from huey.consumer import Consumer, Scheduler

from concord.config import get_settings
from concord.errors import InvalidInput
from concord.jobs.queue import QUEUE_NAME, describe_url, get_huey

log = logging.getLogger(__name__)

# Seconds a graceful stop waits for running jobs before giving up on them.
SHUTDOWN_TIMEOUT = 25.0
CLAIM_PREFIX = "periodic-claim:"
CLAIM_KEEP = timedelta(days=2)
CLAIM_SWEEP_EVERY = timedelta(hours=1)


def _claim_key(name: str, slot: datetime) -> str:
    return f"{CLAIM_PREFIX}{name}:{slot:%Y%m%dT%H%M}"


class ClaimingScheduler(Scheduler):
    """huey's scheduler, but a periodic task is enqueued once per slot across all consumers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_sweep: datetime | None = None

    def enqueue_periodic_tasks(self, now: datetime | None) -> None:
        # huey runs with utc=True: naive UTC timestamps, as read_periodic expects.
        slot = (now or self.huey._get_timestamp()).replace(second=0, microsecond=0)
        for task in self.huey.read_periodic(slot):
            try:
                if not self.huey.put_if_empty(_claim_key(task.name, slot), slot.isoformat()):
                    self._logger.debug("periodic %s at %s taken by another worker", task, slot)
                    continue
                self._logger.info("Enqueueing periodic task %s.", task)
                self.huey.enqueue(task)
            except Exception:
                self._logger.exception("Error enqueueing periodic task %s.", task)
        self._sweep_claims(slot)

    def _sweep_claims(self, slot: datetime) -> None:
        # Claims are tiny but would pile up forever; drop old ones now and then.
        if self._next_sweep is not None and slot < self._next_sweep:
            return
        self._next_sweep = slot + CLAIM_SWEEP_EVERY
        oldest = f"{slot - CLAIM_KEEP:%Y%m%dT%H%M}"
        try:
            for raw in self.huey.storage.result_items():
                key = raw.decode() if isinstance(raw, bytes) else str(raw)
                if key.startswith(CLAIM_PREFIX) and key.rsplit(":", 1)[-1] < oldest:
                    self.huey.delete(key)
        except Exception:
            self._logger.warning("could not sweep old periodic claims", exc_info=True)


class ConcordConsumer(Consumer):
    scheduler_class = ClaimingScheduler


class EmbeddedConsumer(ConcordConsumer):
    def _set_signal_handlers(self) -> None:
        # signal.signal() fails outside the main thread, and the host process (uvicorn) owns
        # SIGINT/SIGTERM anyway: it stops us through EmbeddedWorker.stop().
        pass


def _consumer_options(threads: int) -> dict[str, Any]:
    if threads < 1:
        raise InvalidInput("a worker needs at least one thread")
    return {
        "workers": threads,
        "worker_type": "thread",
        "periodic": True,
        # SQLite is polled: cap the back-off at 1 s so a new job waits at most about a second.
        # PostgreSQL does not poll (LISTEN/NOTIFY).
        "initial_delay": 0.1,
        "max_delay": 1.0,
        "scheduler_interval": 1,
        # SIGTERM (systemd, docker, kubernetes) lets running jobs finish; SIGINT stops now.
        "graceful_signal": "TERM",
        "shutdown_timeout": SHUTDOWN_TIMEOUT,
    }


def _backend(url: str, instance: huey.Huey) -> str:
    return f"{describe_url(url)} ({type(instance.storage).__name__})"


def run_ready(instance: huey.Huey | None = None) -> int:
    """Execute every job that is ready now (queued, or scheduled with a due time) in this
    thread, then return how many ran. Periodic jobs are left to a consumer's scheduler."""
    h = instance or get_huey()
    for task in h.read_schedule():
        h.enqueue(task)
    count = 0
    # pending_count() first: PostgreSQL's dequeue() waits for a NOTIFY when the queue is empty.
    while h.pending_count() > 0:
        try:
            task = h.dequeue()
        except Exception:
            # The message is already off the queue (e.g. a task no longer registered).
            log.exception("could not read a job from the queue")
            continue
        if task is None:  # another worker took it
            continue
        if h.ready_to_run(task):
            count += 1
        h.execute(task)  # task errors are logged and retried by huey, not raised
    return count


def run_worker(threads: int = 2, once: bool = False) -> int:
    """The `concord worker` process. With `once`, run the jobs ready now and return their
    count; otherwise consume until SIGTERM (graceful) or SIGINT and return 0. Call from the
    main thread: the consumer installs signal handlers."""
    options = _consumer_options(threads)  # validate before touching the queue
    url = get_settings().jobs_url
    h = get_huey()
    if once:
        log.info("worker: running ready jobs of queue %r on %s", QUEUE_NAME, _backend(url, h))
        count = run_ready(h)
        log.info("worker: %d jobs run, exiting", count)
        return count
    consumer = ConcordConsumer(h, **options)
    log.info(
        "worker: consuming queue %r on %s with %d threads; SIGTERM stops gracefully",
        QUEUE_NAME,
        _backend(url, h),
        threads,
    )
    consumer.run()
    log.info("worker: stopped")
    return 0


class EmbeddedWorker:
    """A consumer in background threads of the current process (`concord serve`).

    Start it once the application is up and stop it on shutdown; stop() waits for running
    jobs up to `shutdown_timeout` seconds. Safe to start from any thread."""

    def __init__(self, threads: int = 1, shutdown_timeout: float = SHUTDOWN_TIMEOUT) -> None:
        self.threads = threads
        self.shutdown_timeout = shutdown_timeout
        self._consumer: EmbeddedConsumer | None = None

    @property
    def running(self) -> bool:
        return self._consumer is not None

    def start(self) -> None:
        if self._consumer is not None:
            return
        url = get_settings().jobs_url
        options = _consumer_options(self.threads) | {"shutdown_timeout": self.shutdown_timeout}
        h = get_huey()
        consumer = EmbeddedConsumer(h, **options)
        log.info(
            "embedded worker: consuming queue %r on %s with %d threads",
            QUEUE_NAME,
            _backend(url, h),
            self.threads,
        )
        consumer.start()
        self._consumer = consumer

    def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        consumer.stop(graceful=True)
        log.info("embedded worker: stopped")

    def __enter__(self) -> EmbeddedWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m concord.jobs.worker", description="Run Concord background jobs."
    )
    parser.add_argument("--once", action="store_true", help="run the jobs ready now, then exit")
    parser.add_argument("--threads", type=int, default=2, help="worker threads (default 2)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        run_worker(threads=args.threads, once=args.once)
    except InvalidInput as exc:
        print(f"concord worker: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
