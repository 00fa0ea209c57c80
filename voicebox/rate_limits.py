"""Request-rate limits on the REST API, per user and per client address.

Why: quotas (:mod:`voicebox.quotas`) bound how much audio someone makes, not how often they
knock. A script that polls in a tight loop, or hammers ``/history`` with many tokens from one
machine, would still take the server's threads from everybody else. So each REST request counts
against its account (when it has one) and its client address, in a moving window (the ``limits``
package's: no burst at a window's edge), and a request over either gets a 429 whose
``Retry-After`` says when the oldest request in the window expires.

Configured by ``VOICEBOX_RATE_LIMIT`` (``limits`` syntax: ``120/minute``, ``10/second;600/hour``):
``auto`` is :data:`DEFAULT_RATE` once the server is shared (see
:meth:`voicebox.quotas.Quotas.shared`), ``off`` never. Counts live in memory: one server
process; a restart forgets them, which for a per-minute window is harmless. ``/health`` is not
limited (load balancers poll it), nor is the Gradio UI (its own queue serves one take at a time).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from fastapi import Request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from .errors import TooManyRequests
from .quota_words import span
from .quotas import address_of

#: The rate of a shared server when ``VOICEBOX_RATE_LIMIT`` is ``auto``.
DEFAULT_RATE = "120/minute"


class RateLimits:
    """Counts REST requests per ``user:<name>`` and per ``address:<host>``.

    Args:
        rate: ``auto``, ``off`` or a ``limits`` rate string.
        shared: asked on each request under ``auto``: whether the server is shared now (the first
            account added to a running server switches limiting on).
    """

    def __init__(self, rate: str, shared: Callable[[], bool] = lambda: False) -> None:
        self.rate, self.shared = rate, shared
        spec = DEFAULT_RATE if rate == "auto" else rate
        self.items: list[RateLimitItem] = [] if rate == "off" else parse_many(spec)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def active(self) -> bool:
        return bool(self.items) and (self.rate != "auto" or self.shared())

    def hit(self, user: str | None, address: str | None) -> None:
        """Count one request; raise :class:`TooManyRequests` (with ``retry_after``) when over a rate."""
        if not self.active():
            return
        keys = [k for k in (f"user:{user}" if user else "", f"address:{address}" if address else "") if k]
        for item in self.items:
            for key in keys:
                if not self.limiter.test(item, key):
                    raise self._refusal(item, key)
        for item in self.items:
            for key in keys:
                self.limiter.hit(item, key)

    def _refusal(self, item: RateLimitItem, key: str) -> TooManyRequests:
        stats = self.limiter.get_window_stats(item, key)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        who = "this account" if key.startswith("user:") else "this address"
        return TooManyRequests(
            f"Too many requests from {who}: the limit is {item.amount} per {_period(item)}; "
            f"try again in {span(wait)}.",
            retry_after=wait,
        )

    def dependency(self) -> Callable[..., Any]:
        """A FastAPI dependency for the protected routes: it runs after the route class put the
        caller on ``request.state.user``, so accounts are counted by name."""

        async def limit_rate(request: Request) -> None:
            user = getattr(request.state, "user", None)
            self.hit(getattr(user, "name", None), address_of(request))

        return limit_rate


def _period(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"
