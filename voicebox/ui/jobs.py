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
  engine stops at the next frame (the official path: the next chunk) and the lock is released
  normally. Cancel never cancels the Gradio event itself: a cancelled event marks its outputs
  with an "Error" badge, and the handler's own last update says truthfully what happened.
"""

from __future__ import annotations

import queue
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from ..errors import Cancelled


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
    """At most one take per browser session, each with a ticket that can be cancelled.

    A take gets its ticket when the person presses Generate (:meth:`reserve`), before it waits
    in the model queue, so Cancel works while it waits too: the take then never starts. A newer
    ticket of the same session cancels the older one, and :meth:`is_current` tells the older
    event to leave the page to the newer take.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tickets: dict[str, tuple[str, threading.Event]] = {}  # session -> (ticket, cancel)
        self._running: set[str] = set()  # tickets whose take is being made

    def reserve(self, key: str) -> str:
        """A new ticket for session ``key``; the session's previous take is abandoned."""
        ticket = uuid.uuid4().hex
        with self._lock:
            previous = self._tickets.get(key)
            self._tickets[key] = (ticket, threading.Event())
        if previous is not None:
            previous[1].set()
        return ticket

    def cancel(self, key: str) -> bool:
        """Stop the session's take, waiting or running; False when it has none."""
        with self._lock:
            entry = self._tickets.get(key)
        if entry is None or entry[1].is_set():
            return False
        entry[1].set()
        return True

    def is_superseded(self, key: str, ticket: str) -> bool:
        """True when the session has pressed Generate again since ``ticket`` was given."""
        with self._lock:
            entry = self._tickets.get(key)
        return entry is not None and entry[0] != ticket

    def is_running(self, key: str) -> bool:
        with self._lock:
            entry = self._tickets.get(key)
            return entry is not None and entry[0] in self._running

    def run(
        self, key: str, studio: Any, profile_id: str, text: str, ticket: str | None = None, **options: Any
    ) -> Iterator[Any]:
        """Yield :class:`Progress`, :class:`Audio` and finally :class:`Finished` messages.

        ``ticket`` is the one :meth:`reserve` gave (a fresh one is taken when None). Exceptions
        from the service layer (including ``Cancelled``) are re-raised here, in the caller's
        thread. A ticket cancelled before its turn raises ``Cancelled`` at once. Closing this
        iterator early cancels the job.
        """
        if ticket is None:
            ticket = self.reserve(key)
        with self._lock:
            entry = self._tickets.get(key)
            cancel = entry[1] if entry is not None and entry[0] == ticket else None
            if cancel is not None and cancel.is_set():
                del self._tickets[key]  # cancelled while it waited: it ends here
            if cancel is None or cancel.is_set():
                raise Cancelled("Generation cancelled.")
            self._running.add(ticket)
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
                self._running.discard(ticket)
                if self._tickets.get(key, ("",))[0] == ticket:
                    del self._tickets[key]
