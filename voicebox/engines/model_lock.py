"""The model lock: one model call at a time, handed over in the order callers asked for it.

Why not ``threading.RLock``: a take now releases the lock after every sentence chunk so that a
short request from someone else can go in between. With a plain lock the long take's thread,
which asks again at once, usually wins the race, and the short request still waits for the whole
long one. This lock is first come, first served, and reentrant (the TTS engine takes it again
inside a held section, e.g. loading a model while preparing a take).
"""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType


class FairLock:
    """A reentrant FIFO lock with the ``threading.RLock`` interface voicebox uses."""

    def __init__(self) -> None:
        self._state = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._waiting: deque[int] = deque()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = threading.get_ident()
        with self._state:
            if self._owner == me:
                self._depth += 1
                return True
            if self._owner is None and not self._waiting:
                self._owner, self._depth = me, 1
                return True
            if not blocking:
                return False
            self._waiting.append(me)
            try:
                ready = self._state.wait_for(
                    lambda: self._owner is None and self._waiting[0] == me,
                    None if timeout is None or timeout < 0 else timeout,
                )
                if not ready:
                    return False
                self._owner, self._depth = me, 1
                return True
            finally:
                self._waiting.remove(me)
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
