"""Takes per browser session: a ticket each, so a take can be cancelled while it waits or runs.

The take itself is a studio job (:mod:`voicebox.jobs`): it runs on a thread of its own, takes the
model lock per chunk, and reports progress, audio and the saved record as typed events, which
the Generate tab turns into page updates. This module only adds what a page needs on top: one
take per session, a ticket given when Generate is pressed (before the take waits in Gradio's
model queue, so Cancel works while it waits too), and knowing when a newer click has replaced an
older take. Cancel never cancels the Gradio event itself: a cancelled event marks its outputs
with an "Error" badge, and the handler's own last update says truthfully what happened.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, Iterator

from ..errors import Cancelled
from ..jobs import JobAudio, JobDone, JobEvent, JobFailed, JobProgress
from ..records import GenerationRequest

__all__ = ["GenerationJobs", "JobAudio", "JobDone", "JobProgress"]


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

    def run(self, key: str, studio: Any, request: GenerationRequest, ticket: str | None = None) -> Iterator[JobEvent]:
        """Yield the take's :class:`JobProgress`, :class:`JobAudio` and finally :class:`JobDone`.

        ``ticket`` is the one :meth:`reserve` gave (a fresh one is taken when None). The job's
        error (including ``Cancelled``) is raised here, in the caller's thread. A ticket
        cancelled before its turn raises ``Cancelled`` at once. Closing this iterator early
        cancels the take.
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
        try:
            job = studio.start_generation(request, stream=True, cancel=cancel)
            for event in job.events():
                if isinstance(event, JobFailed):
                    raise event.error
                if cancel.is_set() and not isinstance(event, JobDone):
                    # Cancel pressed: audio already queued must not restart the stopped player.
                    raise Cancelled("Generation cancelled.")
                if isinstance(event, (JobProgress, JobAudio, JobDone)):
                    yield event
        finally:
            cancel.set()  # no-op when finished; stops the take when the consumer went away
            with self._lock:
                self._running.discard(ticket)
                if self._tickets.get(key, ("",))[0] == ticket:
                    del self._tickets[key]
