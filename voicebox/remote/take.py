"""One remote take while it is being made: shared between the generator and its worker threads.

Why a separate object: the chunks of a take are fetched on worker threads while the caller's
generator yields them in order. The two sides share the take's stop flag (cancel, or the caller
walking away), the open HTTP streams (closed on stop, so the server stops generating at once
instead of finishing sentences nobody will hear) and one event queue per chunk.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..speech import SpeechRequest
from .voices import Reference


@dataclass
class ChunkJob:
    """One sentence chunk: its events (``("piece", audio)``, then ``("done", ChunkResult)`` or
    ``("error", exception)``) and whether any of its audio went out already (then it cannot be
    started again on another server)."""

    index: int
    text: str
    events: queue.Queue[tuple[str, Any]] = field(default_factory=queue.Queue)
    delivered: bool = False


class Take:
    """The take's shared state and timings."""

    def __init__(self, request: SpeechRequest, size: str | None, language: str) -> None:
        self.request = request
        self.size = size
        self.language = language
        self.started = time.perf_counter()
        self.stop = threading.Event()
        self.ref: Reference | None = None
        self.cache_hit = False
        self.prompt_seconds = 0.0
        self.generate_s = 0.0
        self.first_audio: float | None = None
        self._streams: set[Any] = set()
        self._lock = threading.Lock()

    def track(self, response: Any) -> None:
        """An HTTP stream is open for this take (closed by :meth:`close_streams`)."""
        with self._lock:
            if self.stop.is_set():
                response.close()
            self._streams.add(response)

    def untrack(self, response: Any) -> None:
        with self._lock:
            self._streams.discard(response)

    def close_streams(self) -> None:
        """Hang up every open stream (the server sees the client go and stops that request)."""
        with self._lock:
            streams, self._streams = list(self._streams), set()
        for response in streams:
            try:
                response.close()
            except Exception:  # noqa: BLE001 - closing from another thread may race the reader; it is over anyway
                pass


def failure_message(last: str, servers: int, timeout: float) -> str:
    """What the user reads when a sentence could not be made on any server."""
    where = "The speech server" if servers == 1 else f"{servers} speech servers"
    hint = (f" Raise VOICEBOX_REMOTE_TIMEOUT (now {timeout:g} s) if sentences are very long, or check the "
            "vLLM-Omni server's load and log." if "no answer" in last else
            " voicebox took the server out and tries it again shortly; check the vLLM-Omni server's log.")
    return f"{where} could not make this sentence: {last}.{hint}"
