"""Several vLLM-Omni servers behind one backend: which one gets the next request, and which are out.

Why least-outstanding-requests: a vLLM-Omni server batches whatever is in flight on it
(continuous batching), so the server with the fewest requests in flight is the one where a new
request waits least; ties go round-robin, so even one request at a time spreads over the servers.

Why back-off rather than giving up: a GPU server that restarts, runs out of memory or is redeployed
comes back. A server that fails (connection refused, a timeout, a 5xx answer) is taken out at once
and probed again with ``GET /health`` once its back-off has passed (2 s, doubling per failure, at
most 60 s); the first healthy answer puts it back. The state of each server (up/down, requests in
flight, last error and last check) is what ``status()``, ``/health`` and the Models tab show - its
URL but never the API key.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from ..errors import ModelUnavailable

#: States of a server: not asked yet, answering, taken out until its back-off passes.
UNKNOWN, UP, DOWN = "unknown", "up", "down"
_SIZE = re.compile(r"(\d+(?:\.\d+)?)B\b", re.IGNORECASE)
_PATH = re.compile(r"(?:[A-Za-z]:)?[\\/](?:[\w.@~-]+[\\/])+[\w.@~-]*")


def model_size(model: str | None) -> str | None:
    """``0.6B`` from ``Qwen/Qwen3-TTS-12Hz-0.6B-Base`` (``None`` when the id says no size)."""
    match = _SIZE.search(model or "")
    return f"{match.group(1)}B" if match else None


def clean(message: str, secret: str | None = None, limit: int = 240) -> str:
    """A server's message made safe to show: one line, no file paths, never the key."""
    text = " ".join(str(message).split())
    if secret:
        text = text.replace(secret, "***")
    text = _PATH.sub("…", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Server:
    """One vLLM-Omni server and what voicebox knows of it."""

    url: str
    index: int
    state: str = UNKNOWN
    outstanding: int = 0
    requests: int = 0
    failures: int = 0
    last_error: str = ""
    #: Wall-clock time of the last health check (``None``: never checked).
    last_check: float | None = None
    #: Monotonic time after which a down server may be probed again.
    retry_at: float = 0.0
    model: str | None = None
    #: Whether it keeps registered voices (``None``: not asked yet); see :mod:`.voices`.
    registry: bool | None = None

    @property
    def size(self) -> str | None:
        return model_size(self.model)

    def public(self, now: float) -> dict[str, Any]:
        """What status shows of it (no key; the URL is the operator's own setting)."""
        return {
            "url": self.url, "state": self.state, "outstanding": self.outstanding, "requests": self.requests,
            "model": self.model, "last_error": self.last_error,
            "last_check": round(self.last_check, 3) if self.last_check else None,
            "retry_in": round(max(0.0, self.retry_at - now), 1) if self.state == DOWN else None,
            "voice_registry": self.registry,
        }


class Router:
    """Chooses servers and keeps their state.

    Args:
        urls: base URLs (``VOICEBOX_REMOTE_URLS``).
        client: the shared HTTP client (its own timeouts apply to requests).
        headers: sent with every request (the bearer key).
        health_timeout: seconds a health check may take.
        backoff / max_backoff: the first and the longest wait before a failed server is probed.
        clock: monotonic time (tests move it).
    """

    def __init__(self, urls: list[str] | tuple[str, ...], client: httpx.Client, headers: dict[str, str] | None = None,
                 health_timeout: float = 5.0, backoff: float = 2.0, max_backoff: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, secret: str | None = None) -> None:
        if not urls:
            raise ValueError("the remote backend needs at least one server URL")
        self.servers = [Server(url.rstrip("/"), i) for i, url in enumerate(urls)]
        self.client = client
        self.headers = dict(headers or {})
        self.health_timeout = health_timeout
        self.backoff, self.max_backoff = backoff, max_backoff
        self.clock = clock
        self.secret = secret
        self._lock = threading.Lock()
        self._turn = 0

    # ---- health -------------------------------------------------------------------------------
    def check(self, server: Server) -> bool:
        """``GET /health`` (and ``/v1/models`` once): puts the server up or takes it out."""
        try:
            answer = self.client.get(server.url + "/health", headers=self.headers, timeout=self.health_timeout)
            if answer.status_code != 200:
                raise _Unhealthy(f"health check answered HTTP {answer.status_code}")
            if server.model is None:
                self._read_model(server)
        except (httpx.HTTPError, _Unhealthy) as exc:
            self.fail(server, describe(exc), checked=True)
            return False
        with self._lock:
            server.state, server.failures, server.last_check = UP, 0, time.time()
        return True

    def _read_model(self, server: Server) -> None:
        answer = self.client.get(server.url + "/v1/models", headers=self.headers, timeout=self.health_timeout)
        if answer.status_code == 401:
            raise _Unhealthy("the server refused voicebox's key (HTTP 401): check VOICEBOX_REMOTE_API_KEY")
        if answer.status_code == 200:
            data = answer.json().get("data") or []
            if data and isinstance(data[0], dict) and data[0].get("id"):
                server.model = str(data[0]["id"])

    def check_all(self) -> int:
        """Check every server at once (threads: one slow server does not hold the others up);
        returns how many are up."""
        threads = [threading.Thread(target=self.check, args=(s,), daemon=True) for s in self.servers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.health_timeout * 3)
        return sum(1 for s in self.servers if s.state == UP)

    # ---- choosing -----------------------------------------------------------------------------
    def acquire(self, size: str | None = None, exclude: set[int] | frozenset[int] = frozenset()) -> Server:
        """The least-loaded usable server (its request counted in flight until :meth:`release`).

        A down server whose back-off has passed is probed first and used if healthy.

        Raises:
            ModelUnavailable: no server can take it (all down, or none serves ``size``).
        """
        def fits(server: Server) -> bool:
            return server.index not in exclude and (size is None or server.size in (None, size))

        with self._lock:
            now = self.clock()
            due = [s for s in self.servers if fits(s) and s.state == DOWN and s.retry_at <= now]
        for server in due:
            self.check(server)
        with self._lock:
            usable = [s for s in self.servers if fits(s) and s.state != DOWN]
            if not usable:
                raise ModelUnavailable(self._none_message(size))
            count = len(self.servers)
            chosen = min(usable, key=lambda s: (s.outstanding, (s.index - self._turn) % count))
            self._turn = (chosen.index + 1) % count
            chosen.outstanding += 1
            chosen.requests += 1
            return chosen

    def _none_message(self, size: str | None) -> str:
        count = len(self.servers)
        if size and not any(s.size in (None, size) for s in self.servers):
            served = sorted({s.size for s in self.servers if s.size})
            return (f"No speech server serves the {size} model (they serve {', '.join(served)}). "
                    "Pick that size, or start a vLLM-Omni server with it.")
        errors = {s.last_error for s in self.servers if s.last_error}
        reason = f" Last error: {min(errors)}" if errors else ""
        wait = min((s.retry_at for s in self.servers), default=0.0) - self.clock()
        return (f"None of the {count} speech server{'s' if count > 1 else ''} answers.{reason.rstrip('.')}. "
                f"Start the vLLM-Omni servers or check VOICEBOX_REMOTE_URLS; voicebox tries again "
                f"{'in ' + str(max(1, round(wait))) + ' s' if wait > 0 else 'with the next take'}.")

    def release(self, server: Server, failure: str | None = None) -> None:
        """The request is over; ``failure`` (a server fault) takes the server out."""
        with self._lock:
            server.outstanding = max(0, server.outstanding - 1)
        if failure is not None:
            self.fail(server, failure)

    def fail(self, server: Server, message: str, checked: bool = False) -> None:
        """Take ``server`` out until its back-off passes (longer after each failure in a row)."""
        with self._lock:
            server.failures += 1
            server.state = DOWN
            server.last_error = clean(message, self.secret)
            server.retry_at = self.clock() + min(self.max_backoff, self.backoff * 2 ** (server.failures - 1))
            if checked:
                server.last_check = time.time()

    def up(self) -> list[Server]:
        return [s for s in self.servers if s.state == UP]

    def snapshot(self) -> list[dict[str, Any]]:
        now = self.clock()
        with self._lock:
            return [s.public(now) for s in self.servers]


class _Unhealthy(Exception):
    """A health check got an answer that is not "healthy"."""


def describe(exc: BaseException) -> str:
    """A transport failure in words (never a stack trace)."""
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time (timeout)"
    if isinstance(exc, httpx.ConnectError):
        return "cannot connect (connection refused or host unreachable)"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection broke off"
    if isinstance(exc, httpx.HTTPError):
        return f"network error ({type(exc).__name__})"
    return str(exc)
