"""User-facing errors.

Every layer raises these instead of bare exceptions when the cause is something a user can act
on. Each carries the HTTP status the REST API answers with, so the API and the UI turn them into
a clear message (a JSON ``detail`` or a toast) without knowing where they came from, and never
show a stack trace.
"""

from __future__ import annotations


class VoiceboxError(Exception):
    """Base class: ``str(error)`` is the message shown to the user and should say what to do."""

    status_code: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(VoiceboxError):
    """The request or uploaded data is wrong in a way the user can fix."""

    status_code = 422


class NotFound(VoiceboxError):
    """A profile, sample, generation or file does not exist."""

    status_code = 404


class Conflict(VoiceboxError):
    """The request clashes with stored data, e.g. a duplicate profile name."""

    status_code = 409


class PayloadTooLarge(VoiceboxError):
    """An upload is over ``VOICEBOX_MAX_UPLOAD_MB``; refused before it is decoded."""

    status_code = 413


class UnsupportedMedia(VoiceboxError):
    """The upload is not audio a decoder can read."""

    status_code = 415


class ModelUnavailable(VoiceboxError):
    """A model cannot be loaded (offline and not cached, wrong path, out of memory)."""

    status_code = 503


class Cancelled(VoiceboxError):
    """The user cancelled a long-running operation."""

    status_code = 499


class TooManyRequests(VoiceboxError):
    """Over a limit on how much one caller may do (the REST API's request rate, a quota).

    ``retry_after``: seconds until the same request can succeed (the ``Retry-After`` header);
    ``None`` when waiting does not help (a count, such as profiles, frees up only by deleting).
    """

    status_code = 429

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaExceeded(TooManyRequests):
    """A per-user quota refuses (:mod:`voicebox.quotas`): ``limit`` names it (e.g.
    ``generations_per_hour``), ``reset_at`` is when it allows this again (epoch seconds, or
    ``None``), and the message says both in words."""

    def __init__(self, message: str, limit: str, reset_at: float | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(message, retry_after)
        self.limit = limit
        self.reset_at = reset_at
