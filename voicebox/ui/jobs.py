"""Run a streamed generation on one thread of its own, so it can be watched and cancelled.

Why a dedicated thread instead of iterating ``Studio.generate_stream`` in the Gradio handler:

* The engine holds the model lock (an ``RLock``) *across* its yields. Gradio advances a sync
  generator with one thread-pool call per item, and those calls may land on different threads;
  releasing an ``RLock`` from a thread that did not acquire it raises. Consuming the whole
  generator on one thread keeps acquire and release on the same thread.
* Progress callbacks ("loading model", "chunk 2 of 5") arrive *between* audio pieces, during
  long silent stretches. The thread forwards them at once, so the page shows each stage as it
  starts.
* If the page goes away or the user cancels, the handler sets the job's ``threading.Event``; the
  engine stops at the next chunk boundary and the lock is released normally.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np


@dataclass
class Progress:
    """A stage report from the engine: ``stage`` with ``done`` of ``total`` chunks finished."""

    stage: str
    done: int
    total: int


@dataclass
class Audio:
    """Audio to play now (float32, 24 kHz mono)."""

    samples: np.ndarray


@dataclass
class Finished:
    """The saved history record of the complete take."""

    record: dict[str, Any]


_END = object()


class GenerationJobs:
    """At most one running generation per browser session, each cancellable by its key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, threading.Event] = {}

    def cancel(self, key: str) -> bool:
        """Ask the job of session ``key`` to stop; False when none is running."""
        with self._lock:
            event = self._running.get(key)
        if event is None:
            return False
        event.set()
        return True

    def is_running(self, key: str) -> bool:
        with self._lock:
            return key in self._running

    def run(self, key: str, studio: Any, profile_id: str, text: str, **options: Any) -> Iterator[Any]:
        """Yield :class:`Progress`, :class:`Audio` and finally :class:`Finished` messages.

        Exceptions from the service layer (including ``Cancelled``) are re-raised here, in the
        caller's thread. Closing this iterator early cancels the job.
        """
        cancel = threading.Event()
        with self._lock:
            previous = self._running.get(key)
            if previous is not None:
                previous.set()  # a session starts a new take: the old one is abandoned
            self._running[key] = cancel
        messages: "queue.Queue[Any]" = queue.Queue()

        def report(stage: str, done: int, total: int) -> None:
            messages.put(Progress(stage, done, total))

        def produce() -> None:
            try:
                for update in studio.generate_stream(
                    profile_id, text, progress=report, cancel=cancel, **options
                ):
                    if len(update.audio):
                        messages.put(Audio(update.audio))
                    if update.record is not None:
                        messages.put(Finished(update.record))
            except BaseException as exc:  # handed to the consumer, which decides what to show
                messages.put(exc)
            finally:
                messages.put(_END)

        worker = threading.Thread(target=produce, name=f"voicebox-generate-{key[:8]}", daemon=True)
        worker.start()
        try:
            while True:
                item = messages.get()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()  # no-op when finished; stops the engine when the consumer went away
            with self._lock:
                if self._running.get(key) is cancel:
                    del self._running[key]
