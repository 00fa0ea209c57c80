"""Per-user quotas: takes an hour, seconds of audio a day, profiles, samples per profile, storage.

On a shared server one person must not be able to use it all up, and when a limit refuses, the
person should read which limit it is and when it lets them again ("You have made 30 takes this
hour, the limit; the next one is possible at 14:05 UTC (in 12 min).").

**Limits** (:class:`QuotaLimits`; ``None`` is no limit) come from a preset plus the
``VOICEBOX_QUOTA_*`` variables, which win over it. The preset is :data:`PUBLIC` once the server
is shared (``VOICEBOX_QUOTAS=public``, which a Hugging Face Space gets by default, or ``auto``
with two or more accounts), else none: the one person of a local server, with or without a
login, is never limited unless a variable says so.

**Callers** (:meth:`Quotas.caller`): an account name; on a public server without accounts,
``guest:<client address>`` (account names cannot hold ``:``); else ``""``, the one user. The
studio's methods take ``user=None`` for work that is not a caller's own request (a project's
blocks, a batch's items: the batch route counts its items when it accepts them).

**A ledger of its own.** The quota caller is not always a data owner (a guest is
``guest:<address>`` while its data is the local user's), so the quotas keep each caller's
use in the store's ``quota_usage`` table: the takes of the last 24 hours (start time, seconds of
audio, id), the profiles they made and the bytes of their takes' files. Windows slide ("this
hour" is the last 60 minutes, "today" the last 24 hours), so nothing resets all at once at
midnight and the reset time is exact. A take is counted when it starts (with an estimate of its
seconds), so parallel requests cannot slip past a limit together; when it is saved the estimate
becomes its real seconds; a take that fails or is cancelled is not counted. Storage counts the
files of the caller's takes and the samples of the profiles they made; batch items, project
renders and sentence re-takes are not counted yet (they could be, per owner, from the records).
"""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import ConfigError, Settings
from .engines.model_lock import lane
from .errors import NotFound, QuotaExceeded
from .owners import root as owner_root
from .quota_words import estimate_seconds, megabytes, plural, when

if TYPE_CHECKING:
    from .jobs import JobEvent
    from .records import Generation
    from .store import Store

GENERATIONS = "generations_per_hour"
AUDIO = "audio_seconds_per_day"
PROFILES = "profiles"
SAMPLES = "samples_per_profile"
STORAGE = "storage_mb"
HOUR, DAY = 3600.0, 86400.0
MB = 1024 * 1024
#: Bytes a second of take costs on disk: 24 kHz 16-bit mono, once joined, once per sentence take.
TAKE_BYTES_PER_SECOND = 24000 * 2 * 2


@dataclass(frozen=True)
class QuotaLimits:
    """What one caller may use; ``None``: no limit."""

    generations_per_hour: int | None = None
    audio_seconds_per_day: float | None = None
    profiles: int | None = None
    samples_per_profile: int | None = None
    storage_mb: float | None = None

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))


#: The preset of a shared server (README "Limits"): enough to try voices and make a short piece
#: each day, not enough for one visitor to keep a GPU busy for everyone else.
PUBLIC = QuotaLimits(generations_per_hour=30, audio_seconds_per_day=600, profiles=10, samples_per_profile=10,
                     storage_mb=500)
UNLIMITED = QuotaLimits()


@dataclass(frozen=True)
class Remaining:
    """What a caller may still do now (``None``: no limit), for the UI's "left" line."""

    takes: int | None = None
    audio_seconds: float | None = None
    profiles: int | None = None
    storage_mb: float | None = None

    def summary(self) -> str:
        """E.g. "27 takes left this hour · 540 s of audio left today"; "" without limits."""
        parts = []
        if self.takes is not None:
            parts.append(f"{self.takes} take{'' if self.takes == 1 else 's'} left this hour")
        if self.audio_seconds is not None:
            parts.append(f"{self.audio_seconds:.0f} s of audio left today")
        if self.storage_mb is not None:
            parts.append(f"{megabytes(self.storage_mb)} of storage left")
        return " · ".join(parts)


def address_of(request: Any) -> str | None:
    """The client address of a Starlette or Gradio request (what the server sees: behind a proxy,
    the proxy's, unless the server is told to trust its forwarded headers)."""
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or None


def refuse(limit: str, message: str, reset_at: float | None = None, now: float = 0.0) -> QuotaExceeded:
    retry = None if reset_at is None else max(1, math.ceil(reset_at - now))
    return QuotaExceeded(message, limit, reset_at, retry)


class Reservation:
    """A take counted before it starts (when ``ref`` is set): :meth:`done` records its real
    seconds, :meth:`release` forgets it (it failed or was cancelled). Either way the take runs
    in ``user``'s lane of the model lock (:meth:`running`)."""

    def __init__(self, quotas: Quotas, user: str, ref: str = "") -> None:
        self.quotas, self.user, self.ref = quotas, user, ref
        self.open = bool(ref)

    def done(self, generation: Generation) -> Generation:
        if self.open:
            self.open = False
            self.quotas.settle(self.user, self.ref, generation)
        return generation

    def release(self) -> None:
        if self.open:
            self.open = False
            self.quotas.settle(self.user, self.ref, None)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """The take runs in the caller's lane of the model lock; an error releases the count."""
        with lane(self.user):
            try:
                yield
            except BaseException:
                self.release()
                raise

    def events(self, events: Iterator[JobEvent]) -> Iterator[JobEvent]:
        """A studio job's events, run in the caller's lane, recording the saved take."""
        from .jobs import JobDone

        with self.running():
            for event in events:
                if isinstance(event, JobDone):
                    self.done(event.generation)
                yield event
            self.release()  # ended without a saved take


class Quotas:
    """The quotas of one studio: limits, the usage ledger, checks and what is left."""

    def __init__(self, store: Store, settings: Settings, clock: Any = None) -> None:
        self.store, self.settings = store, settings
        self.clock = clock or time.time
        self.table = store.table("quota_usage")

    # ---- who and how much ----------------------------------------------------------------
    def shared(self) -> bool:
        """Whether the server is shared: ``public``, or ``auto`` with two or more accounts or
        strangers let in (Hugging Face sign-in, anonymous libraries)."""
        if self.settings.quotas != "auto":
            return self.settings.quotas == "public"
        from .auth import public, registry

        if public(self.settings):
            return True
        try:
            return len(registry(self.settings).all()) > 1
        except ConfigError:  # a damaged users file: start-up reports it
            return False

    def caller(self, name: str | None, address: str | None = None) -> str:
        """Whose quotas a request uses: its account; a guest's address on a public server; ``""``."""
        if name:
            return name
        if self.settings.quotas == "public" and address:
            return f"guest:{address}"
        return ""

    def limits_for(self, user: str) -> QuotaLimits:
        """The preset (public once shared, else none) with the ``VOICEBOX_QUOTA_*`` values on top."""
        return replace(PUBLIC if self.shared() else UNLIMITED, **dict(self.settings.quota_overrides))

    # ---- the ledger ------------------------------------------------------------------------
    def _usage(self, user: str) -> dict[str, Any]:
        """The caller's row of the ledger, as a copy to change and :meth:`_save`."""
        row = self.table.get(lambda r: r.get("user") == user) or {}
        return {"user": user, "takes": [list(t) for t in row.get("takes", [])],
                "profiles": list(row.get("profiles", [])), "files": dict(row.get("files", {}))}

    def _save(self, usage: dict[str, Any]) -> None:
        now = self.clock()
        usage["takes"] = [t for t in usage["takes"] if t[0] > now - DAY]
        user = usage["user"]
        if self.table.get(lambda r: r.get("user") == user) is None:
            self.table.insert(usage)
        else:
            self.table.update(usage, lambda r: r.get("user") == user)

    def _profiles(self, usage: dict[str, Any]) -> list[str]:
        """The caller's profiles that still exist."""
        alive = []
        for profile_id in usage["profiles"]:
            with contextlib.suppress(NotFound):
                alive.append(self.store.get_profile(profile_id)["id"])
        return alive

    def _storage_bytes(self, usage: dict[str, Any]) -> int:
        """Bytes of the caller's takes (still in the history) and of their profiles' samples."""
        total = 0
        for generation_id, size in usage["files"].items():
            total += int(size) if _exists(self.store, generation_id) else 0
        for profile_id in self._profiles(usage):
            for sample in self.store.list_samples(profile_id):
                total += _size(self.store.resolve_file(sample["file"]))
        return total

    # ---- checks ----------------------------------------------------------------------------
    def check(self, user: str, kind: str, amount: float = 1, *, profile_id: str | None = None) -> None:
        """Refuse (:class:`QuotaExceeded`) when ``amount`` more of ``kind`` would pass the caller's
        limit: takes (:data:`GENERATIONS`), seconds (:data:`AUDIO`), profiles, samples of
        ``profile_id`` (:data:`SAMPLES`) or bytes (:data:`STORAGE`)."""
        limit = getattr(self.limits_for(user), kind)
        if limit is None:
            return
        with self.store.locked():
            self._check(user, kind, amount, limit, self._usage(user), profile_id)

    def _check(self, user: str, kind: str, amount: float, limit: float, usage: dict[str, Any],
               profile_id: str | None) -> None:
        now = self.clock()
        if kind == GENERATIONS:
            recent = sorted(t[0] for t in usage["takes"] if t[0] > now - HOUR)
            if len(recent) + amount <= limit:
                return
            if amount > limit:
                raise refuse(kind, f"{amount:.0f} takes at once are more than the {limit} an hour allowed; "
                                   "make fewer at a time.")
            reset = recent[int(len(recent) - (limit - amount)) - 1] + HOUR
            made = f"You have made {plural(len(recent), 'take')} this hour"
            if len(recent) == limit and amount == 1:
                text = f"{made}, the limit; the next one is possible at {when(reset, now)}."
            else:
                which = "the next one is" if amount == 1 else f"{amount:.0f} more are"
                text = f"{made} and the limit is {limit}: {which} possible at {when(reset, now)}."
            raise refuse(kind, text, reset, now)
        if kind == AUDIO:
            recent = sorted((t[0], t[1]) for t in usage["takes"] if t[0] > now - DAY)
            used, need = sum(s for _, s in recent), min(max(amount, 1.0), limit)  # a take is >= 1 s
            if used + need <= limit:
                return
            freed, reset = 0.0, now
            for at, seconds in recent:
                freed += seconds
                reset = at + DAY
                if used - freed + need <= limit:
                    break
            made = f"You have made {used:.0f} s of audio in the last 24 hours"
            if used >= limit:
                text = f"{made}, the limit ({limit:.0f} s a day); more is possible at {when(reset, now)}."
            else:
                text = (f"{made}; the limit is {limit:.0f} s a day and this needs about {need:.0f} s more; "
                        f"it is possible at {when(reset, now)}.")
            raise refuse(kind, text, reset, now)
        if kind == PROFILES:
            count = len(self._profiles(usage))
            if count + amount > limit:
                have = plural(count, "voice profile")
                raise refuse(kind, f"You have {have}, the limit; delete one to make another.")
            return
        if kind == SAMPLES:
            count = len(self.store.list_samples(profile_id or ""))
            if count + amount > limit:
                has = plural(count, "sample")
                raise refuse(kind, f"This profile has {has}, the limit; delete one to add another.")
            return
        if kind == STORAGE:
            used = self._storage_bytes(usage)
            if used + amount > limit * MB:
                raise refuse(kind, f"Your takes and samples use {megabytes(used / MB)} of the "
                                   f"{megabytes(limit)} you may keep; delete some in History or Profiles "
                                   "to make room.")
            return
        raise ValueError(f"unknown quota {kind!r}")

    def check_take(self, user: str, *texts: Any) -> None:
        """Refuse takes of ``texts`` (one take each) that the caller's limits would not allow now."""
        limits = self.limits_for(user)
        if not limits.any:
            return
        seconds = sum(estimate_seconds(text) for text in texts)
        with self.store.locked():
            usage = self._usage(user)
            for kind, amount in ((GENERATIONS, len(texts)), (AUDIO, seconds),
                                 (STORAGE, seconds * TAKE_BYTES_PER_SECOND)):
                limit = getattr(limits, kind)
                if limit is not None:
                    self._check(user, kind, amount, limit, usage, None)

    # ---- counting --------------------------------------------------------------------------
    def reserve_take(self, user: str | None, *texts: Any) -> Reservation:
        """Check and count a take of each of ``texts`` at once, with estimated seconds (see the
        module docstring); ``user`` ``None`` or without limits: nothing is checked or counted
        (the reservation still names the lane)."""
        if user is None or not self.limits_for(user).any:
            return Reservation(self, user or "")
        ref = f"pending:{uuid.uuid4().hex}"
        with self.store.locked():
            self.check_take(user, *texts)
            usage = self._usage(user)
            now = self.clock()
            usage["takes"].extend([now, estimate_seconds(text), ref] for text in texts)
            self._save(usage)
        return Reservation(self, user, ref)

    def settle(self, user: str, ref: str, generation: Generation | None) -> None:
        """A reserved take ended: record its real seconds and files, or forget it (``None``)."""
        with self.store.locked():
            usage = self._usage(user)
            if generation is None:
                usage["takes"] = [t for t in usage["takes"] if t[2] != ref]
            else:
                for take in usage["takes"]:
                    if take[2] == ref:
                        take[1], take[2] = float(generation.duration), generation.id
                        break
                usage["files"][generation.id] = self.take_bytes(generation)
                usage["files"] = {g: n for g, n in usage["files"].items() if _exists(self.store, g)}
            self._save(usage)

    def take_bytes(self, generation: Generation) -> int:
        """Bytes of a saved take: its audio and every sentence take's file."""
        total = _size(self.store.resolve_file(generation.file)) if generation.file else 0
        folder = owner_root(self.settings.data_dir, generation.owner) / "generations" / generation.id
        if folder.is_dir():
            total += sum(_size(p) for p in folder.iterdir())
        return total

    @contextlib.contextmanager
    def new_profile(self, user: str | None) -> Iterator[Any]:
        """Around making a profile: refuse one over the limit; the block sets ``.profile_id`` on
        what it yields, which is then counted as the caller's. Holds the store lock, so two
        requests cannot both take the last place."""
        made = _Made()
        if user is None or not self.limits_for(user).any:
            yield made
            return
        with self.store.locked():
            self.check(user, PROFILES)
            yield made
            if made.profile_id:
                usage = self._usage(user)
                usage["profiles"] = [*self._profiles(usage), made.profile_id]
                self._save(usage)

    # ---- what is left ------------------------------------------------------------------------
    def remaining(self, user: str) -> Remaining:
        """What the caller may still do now, where a limit is set."""
        limits = self.limits_for(user)
        if not limits.any:
            return Remaining()
        now = self.clock()
        with self.store.locked():
            usage = self._usage(user)
            takes = sum(1 for t in usage["takes"] if t[0] > now - HOUR)
            seconds = sum(t[1] for t in usage["takes"] if t[0] > now - DAY)
            profiles = len(self._profiles(usage)) if limits.profiles is not None else 0
            stored = self._storage_bytes(usage) if limits.storage_mb is not None else 0

        def left(limit: float | None, used: float) -> Any:
            return None if limit is None else max(0, limit - used)

        return Remaining(left(limits.generations_per_hour, takes),
                         left(limits.audio_seconds_per_day, seconds), left(limits.profiles, profiles),
                         None if limits.storage_mb is None else max(0.0, limits.storage_mb - stored / MB))


@dataclass
class _Made:
    profile_id: str = ""


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _exists(store: Store, generation_id: str) -> bool:
    with contextlib.suppress(NotFound):
        return bool(store.get_generation(generation_id))
    return False


def page_caller(studio: Any, request: Any) -> str | None:
    """Whose quotas a UI event uses: the login's name, a signed-in or anonymous visitor's owner
    (:mod:`voicebox.identity`), a guest's address on a public server, or ``""``; ``None`` for a
    studio without quotas (a test double)."""
    from .identity import visitor_of_request

    quotas = getattr(studio, "quotas", None)
    if quotas is None:
        return None
    found = visitor_of_request(quotas.settings, request)
    return quotas.caller(found.name if found.kind == "account" else found.owner, address_of(request))
