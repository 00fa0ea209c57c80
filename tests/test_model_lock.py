"""The model lock hands over first come, first served, and is reentrant like an RLock."""

from __future__ import annotations

import threading

import pytest

from voicebox.engines.model_lock import FairLock


def test_waiters_get_the_lock_in_the_order_they_asked() -> None:
    lock = FairLock()
    order: list[int] = []
    lock.acquire()
    threads = []
    for n in range(5):
        thread = threading.Thread(target=lambda n=n: (lock.acquire(), order.append(n), lock.release()))
        thread.start()
        while len(lock._waiting) < n + 1:  # wait until it is queued, so the order is known
            threading.Event().wait(0.001)
        threads.append(thread)
    lock.release()
    for thread in threads:
        thread.join(10)
    assert order == [0, 1, 2, 3, 4]


def test_a_holder_that_asks_again_queues_behind_the_waiters() -> None:
    lock = FairLock()
    got: list[str] = []
    lock.acquire()
    other = threading.Thread(target=lambda: (lock.acquire(), got.append("other"), lock.release()))
    other.start()
    while not lock._waiting:
        threading.Event().wait(0.001)
    lock.release()
    with lock:  # the long take's next chunk: it must wait for the other request
        got.append("again")
    other.join(10)
    assert got == ["other", "again"]


def test_it_is_reentrant_and_only_the_owner_may_release() -> None:
    lock = FairLock()
    with lock:
        with lock:
            assert lock.held_by_me()
        assert lock.held_by_me()
        failure: list[BaseException] = []
        thread = threading.Thread(target=lambda: failure.append(pytest.raises(RuntimeError, lock.release).value))
        thread.start()
        thread.join(10)
        assert failure and "another thread" in str(failure[0])
    assert not lock.held_by_me()
    assert lock.acquire(blocking=False)
    lock.release()


def test_a_timed_out_waiter_leaves_the_queue() -> None:
    lock = FairLock()
    lock.acquire()
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(lock.acquire(timeout=0.05)))
    thread.start()
    thread.join(10)
    assert result == [False] and not lock._waiting
    lock.release()
