"""Anonymous libraries expire (issue #16, ``VOICEBOX_ANONYMOUS``).

A public Space that gives every browser its own library would otherwise keep strangers' voices
forever: a visitor cannot come back for them once the browser's cookie is gone, and nobody else may
see them. So each anonymous owner has a row in the store's ``visitors`` table with the time it was
last seen, and a library nobody has used for ``VOICEBOX_ANONYMOUS_DAYS`` is erased with the same
code as "Delete everything" (:func:`voicebox.my_data.delete_everything`): every record and file.

Seeing a visitor writes at most once per :data:`TOUCH_EVERY` (a write per click would be wasted,
the expiry is counted in days), and a sweep runs at most once per :data:`SWEEP_EVERY`, in a
background thread, started by a visit (no timer thread to manage) and once at start-up.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from .errors import Conflict
from .identity import ANON_PREFIX

log = logging.getLogger(__name__)

DAY = 86400.0
#: A visitor's "last seen" is written again only after this long.
TOUCH_EVERY = 3600.0
#: Libraries are checked for expiry at most this often.
SWEEP_EVERY = 3600.0


@dataclass(frozen=True)
class Expired:
    """One library a sweep erased (or had to leave because a render of it runs)."""

    owner: str
    last_seen: float
    erased: bool


class AnonymousLibraries:
    """Who was seen when, and erasing the libraries of those gone too long.

    Args:
        studio: the :class:`~voicebox.services.Studio` whose store holds the ``visitors`` table.
        days: inactivity after which a library is erased.
        clock: seconds since the epoch (tests move it forward).
    """

    def __init__(self, studio: Any, days: float, clock: Callable[[], float] = time.time) -> None:
        self.studio, self.days, self.clock = studio, days, clock
        self.table = studio.store.table("visitors")
        self._written: dict[str, float] = {}
        self._lock = threading.Lock()
        self._last_sweep = float("-inf")
        self._sweeping = False

    def last_seen(self, owner: str) -> float | None:
        """When ``owner`` was last seen (``None`` if never)."""
        with self.studio.store.locked():
            row = self.table.get(lambda r: r.get("owner") == owner)
        return float(row["last_seen"]) if row else None

    def seen(self, owner: str) -> None:
        """Note a visit of an anonymous ``owner`` (cheap: writes at most once an hour), and start
        a sweep in the background when one is due."""
        if not owner.startswith(ANON_PREFIX):
            return
        now = self.clock()
        with self._lock:
            due = now - self._written.get(owner, float("-inf")) >= TOUCH_EVERY
            if due:
                self._written[owner] = now
        if due:
            self._write(owner, now)
        self.sweep_soon()

    def _write(self, owner: str, now: float) -> None:
        with self.studio.store.locked():
            if self.table.get(lambda r: r.get("owner") == owner) is None:
                self.table.insert({"owner": owner, "last_seen": now})
            else:
                self.table.update({"last_seen": now}, lambda r: r.get("owner") == owner)

    def sweep_soon(self) -> bool:
        """Start :meth:`sweep` in a background thread if none ran in the last hour; True if started."""
        now = self.clock()
        with self._lock:
            if self._sweeping or now - self._last_sweep < SWEEP_EVERY:
                return False
            self._sweeping, self._last_sweep = True, now
        threading.Thread(target=self._sweep_in_background, name="voicebox-anonymous-expiry", daemon=True).start()
        return True

    def _sweep_in_background(self) -> None:
        try:
            self.sweep()
        except Exception:  # a failed sweep is retried at the next one; the visitor never sees it
            log.exception("could not erase expired anonymous libraries")
        finally:
            with self._lock:
                self._sweeping = False

    def sweep(self) -> list[Expired]:
        """Erase every anonymous library not seen for :attr:`days`; returns what it found.

        A library with a render, batch or export running is left for the next sweep (its owner is
        plainly not gone)."""
        from .my_data import delete_everything

        cutoff = self.clock() - self.days * DAY
        with self.studio.store.locked():
            stale = [(r["owner"], float(r["last_seen"])) for r in self.table.all()
                     if float(r.get("last_seen", 0)) < cutoff]
        found: list[Expired] = []
        for owner, last_seen in stale:
            try:
                delete_everything(self.studio, owner)
            except Conflict:
                found.append(Expired(owner, last_seen, False))
                continue
            with self.studio.store.locked():
                # a visit during the erase keeps the (now empty) library's row
                self.table.remove(lambda r: r.get("owner") == owner and float(r.get("last_seen", 0)) < cutoff)
            with self._lock:
                self._written.pop(owner, None)
            found.append(Expired(owner, last_seen, True))
            log.info("erased an anonymous library not seen for %.0f days", self.days)
        return found
