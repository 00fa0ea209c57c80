"""The model lock: one model call at a time, handed over fairly between the people waiting.

Why not ``threading.RLock``: a take releases the lock after every batch of sentence chunks so
that a short request from someone else can go in between. With a plain lock the long take's
thread, which asks again at once, usually wins the race, and the short request still waits for
the whole long one. This lock hands over in turn, and is reentrant (the TTS engine takes it
again inside a held section, e.g. loading a model while preparing a take).

**Fair between people, not only between threads.** First come, first served is not enough on a
shared server: one person who queues 20 takes has 20 threads waiting, and someone else's first
take would wait behind all of them. So every waiter belongs to a *lane* (who it works for), and
at each hand-over the lane served longest ago goes next (a lane never served goes first; within
a lane, and between lanes served equally long ago, the earliest asker). One person's 20 takes
then alternate with everybody else's: a second person's take goes in after at most one chunk
batch of each other lane.

**Why the lane comes from a context variable.** The lock is taken deep down (per batch of
chunks in :mod:`voicebox.engines.synthesis`, by Whisper in :mod:`voicebox.engines.asr`), many
layers below the studio, which is the only place that knows who asked. Passing a user through
the :class:`~voicebox.speech.SpeechBackend` protocol and every engine call would change a
protocol other backends implement; a :class:`contextvars.ContextVar` set by the studio around a
take (:func:`lane`) follows the take's thread instead, including the quality gate's Whisper
calls, and is copied into the worker contexts of asyncio and anyio. Work that sets no lane
(loading a model from the Models tab, a project render) shares the default lane ``""``.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType

#: Who the current thread's model calls are for (an account name, ``guest:<address>``, or ``""``).
current_lane: ContextVar[str] = ContextVar("voicebox_model_lane", default="")
#: Lanes remembered; beyond this the ones served longest ago are forgotten (they then count as
#: never served, which is where they would stand anyway).
MAX_LANES = 1024


@contextlib.contextmanager
def lane(name: str) -> Iterator[None]:
    """Make the model calls in this block (on this thread or context) wait in ``name``'s lane."""
    token = current_lane.set(name)
    try:
        yield
    finally:
        try:
            current_lane.reset(token)
        except ValueError:  # finished in another context (a generator closed elsewhere): nothing to undo
            pass


@dataclass(frozen=True)
class _Waiter:
    thread: int
    lane: str
    ticket: int


class FairLock:
    """A reentrant lock with the ``threading.RLock`` interface voicebox uses, handed over
    round-robin between lanes (see the module docstring) and in arrival order within one."""

    def __init__(self) -> None:
        self._state = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._waiting: list[_Waiter] = []  # in arrival order
        self._tickets = itertools.count()
        self._handovers = itertools.count()
        self._served: dict[str, int] = {}  # lane -> number of the hand-over that last served it

    def _next(self) -> _Waiter:
        """The waiter whose turn it is: its lane was served longest ago, then it asked first."""
        return min(self._waiting, key=lambda w: (self._served.get(w.lane, -1), w.ticket))

    def _take(self, me: int, name: str) -> None:
        self._owner, self._depth = me, 1
        self._served[name] = next(self._handovers)
        if len(self._served) > MAX_LANES:
            for old in sorted(self._served, key=self._served.__getitem__)[: MAX_LANES // 2]:
                del self._served[old]

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = threading.get_ident()
        with self._state:
            if self._owner == me:
                self._depth += 1
                return True
            name = current_lane.get()
            if self._owner is None and not self._waiting:
                self._take(me, name)
                return True
            if not blocking:
                return False
            waiter = _Waiter(me, name, next(self._tickets))
            self._waiting.append(waiter)
            try:
                ready = self._state.wait_for(
                    lambda: self._owner is None and self._next() is waiter,
                    None if timeout is None or timeout < 0 else timeout,
                )
                if not ready:
                    return False
                self._take(me, name)
                return True
            finally:
                self._waiting.remove(waiter)
                self._state.notify_all()

    def release(self) -> None:
        with self._state:
            if self._owner != threading.get_ident():
                raise RuntimeError("cannot release a lock held by another thread")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._state.notify_all()

    def held_by_me(self) -> bool:
        with self._state:
            return self._owner == threading.get_ident()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
