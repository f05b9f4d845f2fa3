"""Prepare a large submission's batches in a separate process while this one writes.

Reading, validating and preparing rows is pure Python and would share one interpreter lock
with the writer; in a child process it runs on its own core. The parent pumps the file's
bytes to the child through a pipe and receives prepared batches through another. Both pipes
are bounded, so a slow database stops the child (backpressure) and memory holds about two
batches whatever the file's size. The child loads the lookup index itself.
"""

from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing
import signal
import threading
import traceback
from collections.abc import Iterator
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection
from typing import Any, BinaryIO

from concord.intake.prepare import Plan, PreparedBatch, Preparer, prepared_batches
from concord.intake.readers import Reader

CHUNK = 1 << 20
log = logging.getLogger("concord.intake")
_END = b""


class _PipeStream(io.RawIOBase):
    """The bytes the parent pumps through `conn`, as a readable stream."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pending = memoryview(b"")
        self.done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self.pending:
            if self.done:
                return 0
            chunk = self.conn.recv_bytes()
            if chunk == _END:
                self.done = True
                return 0
            self.pending = memoryview(chunk)
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


def _child(
    plan: Plan,
    database_url: str,
    reader_spec: tuple[str, str],
    source: str,
    skip: int,
    size: int,
    data: Connection,
    out: Connection,
) -> None:
    """The child's work: read, prepare and send batches; then None, or an error text."""
    # Ctrl-C reaches the whole process group; the parent handles it and stops this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from concord.db import session_factory
    from concord.intake.readers.csvfeed import CsvFeedReader
    from concord.intake.registry import builtin_reader
    from concord.intake.service import rare_collections
    from concord.orgs.whois import current_index

    try:
        with session_factory(database_url, readonly=True)() as session:
            index = current_index(session)
        stream = io.BufferedReader(_PipeStream(data), CHUNK)
        preparer = Preparer(plan, index)
        kind, value = reader_spec
        reader = CsvFeedReader.from_yaml(value) if kind == "yaml" else builtin_reader(value)
        with rare_collections():
            for batch in prepared_batches(preparer, reader.read(stream, source), skip, size):
                out.send(batch)
        out.send(None)
    except (BrokenPipeError, EOFError):  # the parent is gone: nothing to tell
        return
    except BaseException:
        try:
            out.send(traceback.format_exc())
        except (BrokenPipeError, OSError):
            return


class IntakeWorkerFailed(RuntimeError):
    """The second process failed: a fault of the server, not of the file (a reader yields
    the file's faults as errors), so the API answers 500 with an incident reference."""


def _pump(stream: BinaryIO, conn: Connection, stop: threading.Event) -> None:
    try:
        while not stop.is_set():
            chunk = stream.read(CHUNK)
            conn.send_bytes(chunk)
            if not chunk:
                return
    except (BrokenPipeError, OSError, ValueError):
        return  # the child ended early (an error it reports itself), or the run stopped


def _spec(reader: Reader) -> tuple[str, str]:
    """How the child finds the reader: a built-in one by name, a profile by its YAML."""
    yaml_text = getattr(reader, "yaml_text", None)
    if yaml_text is not None:
        return ("yaml", yaml_text)
    return ("builtin", reader.name)


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """SIGINT held back in this thread while the fork server and the child start: they
    inherit the mask, so that a Ctrl-C (sent to the whole process group) never interrupts
    their start-up with a traceback on the terminal; this process gets it once the block
    ends, and stops them. The fork server ignores SIGINT once it runs, as does the child."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    # Started first: starting it unblocks SIGINT in this thread, whatever the mask was.
    resource_tracker.ensure_running()
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _context() -> Any:
    # A fork server: children start fast, without the parent's threads and locks.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["concord.intake.prepare", "concord.intake.registry"])
    return ctx


class ChildBatches:
    """Prepared batches from a child process, in order. The child starts here (OSError if
    it cannot); iterating raises IntakeWorkerFailed if it fails; `close` stops it."""

    def __init__(
        self,
        plan: Plan,
        database_url: str,
        reader: Reader,
        stream: BinaryIO,
        source: str,
        skip: int,
        size: int,
    ) -> None:
        ctx = _context()
        self.source = source
        data_in, self.data_out = ctx.Pipe(duplex=False)
        self.batches_in, batches_out = ctx.Pipe(duplex=False)
        self.child = ctx.Process(
            target=_child,
            args=(plan, database_url, _spec(reader), source, skip, size, data_in, batches_out),
            name="concord-intake-prepare",
            daemon=True,
        )
        try:
            with _sigint_held():
                self.child.start()
        finally:
            data_in.close()
            batches_out.close()
        self.stop = threading.Event()
        self.pump = threading.Thread(
            target=_pump, args=(stream, self.data_out, self.stop), name="intake-pump", daemon=True
        )
        self.pump.start()
        self.closed = False

    def __iter__(self) -> Iterator[PreparedBatch]:
        while True:
            try:
                item = self.batches_in.recv()
            except EOFError:
                raise IntakeWorkerFailed(
                    f"the intake worker for {self.source} stopped (exit code {self.child.exitcode})"
                ) from None
            if item is None:
                return
            if isinstance(item, str):
                # the detail goes to the log; the user gets its last line, not a traceback
                log.error("intake worker failed on %s:\n%s", self.source, item)
                reason = item.strip().splitlines()[-1] if item.strip() else "unknown error"
                raise IntakeWorkerFailed(
                    f"reading {self.source} failed in the intake worker: {reason}"
                )
            yield item

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        # Closing our end stops the child at its next send. The pump stops before its next
        # chunk (or when the child's exit breaks its pipe); closing the pipe then ends the
        # child's input, should the child be waiting for more rather than sending.
        self.stop.set()
        self.batches_in.close()
        self.pump.join(timeout=5)
        if not self.pump.is_alive():
            self.data_out.close()
        self.child.join(timeout=5)
        if self.child.is_alive():
            self.child.kill()
            self.child.join()
        self.pump.join(timeout=5)
        self.data_out.close()
