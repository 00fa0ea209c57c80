"""One job model for every take: started, watched through typed events, cancelled.

Before, the REST API (``ThreadFeed``) and the UI (``GenerationJobs``) each ran streams on threads
of their own with four sets of message types. Now the service layer starts a :class:`Job` for a
take; it runs on a thread of its own (the model lock is taken and released on that thread, per
chunk), and whoever watches it — the Generate tab, the OpenAI streaming route, later project
rendering and batch — reads the same events:

* :class:`JobProgress` — a stage started ("loading model", "generating" chunk 2 of 5, "saving");
* :class:`JobAudio` — audio to play now (streaming takes only);
* :class:`JobChunk` — a sentence chunk is finished (its text, seed, place, status);
* :class:`JobDone` — the take is saved: the :class:`~voicebox.records.Generation` record;
* :class:`JobFailed` — it stopped: the error (``Cancelled`` when someone cancelled it).

The last event is always :class:`JobDone` or :class:`JobFailed`.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from dataclasses import dataclass
from typing import Callable, Iterator, Union

import numpy as np

from .records import Chunk, Generation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobProgress:
    """``stage`` started with ``done`` of ``total`` chunks finished; ``detail`` says more (a
    re-take: "take 2 — the words did not match")."""

    stage: str
    done: int
    total: int
    detail: str = ""


@dataclass(frozen=True)
class JobAudio:
    samples: np.ndarray


@dataclass(frozen=True)
class JobChunk:
    chunk: Chunk


@dataclass(frozen=True)
class JobDone:
    generation: Generation


@dataclass(frozen=True)
class JobFailed:
    error: BaseException


JobEvent = Union[JobProgress, JobAudio, JobChunk, JobDone, JobFailed]


class Job:
    """A take being made on a thread of its own.

    Args:
        work: yields the take's events, checking ``cancel`` as it goes (the studio's
            :meth:`~voicebox.services.Studio.take_events`); an exception it raises becomes the
            :class:`JobFailed` event.
        cancel: set by :meth:`cancel`; a job cancelled before it starts never touches the model.
    """

    def __init__(self, work: Callable[[threading.Event], Iterator[JobEvent]],
                 cancel: threading.Event | None = None, name: str = "take") -> None:
        self.id = uuid.uuid4().hex
        self.cancel_event = cancel or threading.Event()
        self._events: "queue.Queue[JobEvent]" = queue.Queue()
        self._finished = threading.Event()
        self.outcome: JobDone | JobFailed | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), name=f"voicebox-{name}-{self.id[:8]}", daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[threading.Event], Iterator[JobEvent]]) -> None:
        try:
            for event in work(self.cancel_event):
                if isinstance(event, JobDone):
                    self.outcome = event
                self._events.put(event)
            if self.outcome is None:
                raise RuntimeError("the take ended without being saved")
        except BaseException as exc:  # handed to whoever watches the job
            self.outcome = JobFailed(exc)
            self._events.put(self.outcome)
        finally:
            self._finished.set()

    def cancel(self) -> None:
        """Stop the take at its next chunk or frame; the last event is then ``JobFailed(Cancelled)``."""
        self.cancel_event.set()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def next_event(self, timeout: float | None = None) -> JobEvent:
        """The next event (blocking); after the last one, the last one again."""
        if self._finished.is_set() and self._events.empty():
            return self.outcome  # type: ignore[return-value]
        return self._events.get(timeout=timeout)

    def events(self) -> Iterator[JobEvent]:
        """Every event in order, ending with :class:`JobDone` or :class:`JobFailed`. Closing the
        iterator early (the page went away) cancels the job."""
        try:
            while True:
                event = self.next_event()
                yield event
                if isinstance(event, (JobDone, JobFailed)):
                    return
        finally:
            if not self.finished:
                self.cancel()

    def result(self, timeout: float | None = None) -> Generation:
        """Wait for the saved take; raises what stopped it."""
        self._thread.join(timeout)
        if isinstance(self.outcome, JobDone):
            return self.outcome.generation
        if isinstance(self.outcome, JobFailed):
            raise self.outcome.error
        raise TimeoutError("the take is still being made")
