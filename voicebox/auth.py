"""Credential checks shared by the REST API and the Gradio login.

Two ways in, both configured in :class:`voicebox.config.Settings`:

* ``VOICEBOX_AUTH=user:password`` — HTTP Basic for the REST API and Gradio's login form for the UI;
* ``VOICEBOX_API_TOKEN=...`` — ``Authorization: Bearer <token>`` for the REST API only (scripts
  and OpenAI-style clients, which send a bearer token and cannot fill in a login form).

Every comparison uses :func:`secrets.compare_digest` on bytes and evaluates the user name and the
password both, so the time a check takes says nothing about which part (or how much of it) was
right. Nothing here logs or echoes a credential.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Callable

from .config import Settings

REALM = "voicebox"


def auth_required(settings: Settings) -> bool:
    """True when the API must see credentials (a login or a token is configured)."""
    return settings.auth is not None or bool(settings.api_token)


def _same(given: str, expected: str) -> bool:
    """Constant-time equality of two strings (compared as UTF-8 bytes, so any text works)."""
    return secrets.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def check_login(settings: Settings, username: str, password: str) -> bool:
    """True when ``username``/``password`` match ``VOICEBOX_AUTH`` (False when none is set)."""
    if settings.auth is None:
        return False
    user_ok = _same(username, settings.auth[0])
    password_ok = _same(password, settings.auth[1])  # always evaluated: no early exit on the user
    return user_ok and password_ok


def parse_basic(value: str) -> tuple[str, str] | None:
    """``user:password`` from the base64 part of a Basic header; ``None`` if it is malformed."""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def check_credentials(settings: Settings, authorization: str | None) -> bool:
    """Whether an ``Authorization`` header grants access to the API.

    Always True when no credentials are configured. Otherwise ``Basic`` must carry the
    ``VOICEBOX_AUTH`` login, or ``Bearer`` the ``VOICEBOX_API_TOKEN``.
    """
    if not auth_required(settings):
        return True
    scheme, _, value = (authorization or "").strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "basic" and settings.auth is not None:
        pair = parse_basic(value)
        return pair is not None and check_login(settings, *pair)
    if scheme == "bearer" and settings.api_token:
        return _same(value.strip(), settings.api_token)
    return False


def challenge(settings: Settings) -> dict[str, str]:
    """The ``WWW-Authenticate`` header of a 401: Basic when a login exists (browsers then ask
    for it), else Bearer."""
    scheme = "Basic" if settings.auth is not None else "Bearer"
    return {"WWW-Authenticate": f'{scheme} realm="{REALM}"'}


def gradio_auth(settings: Settings) -> Callable[[str, str], bool] | None:
    """The ``auth`` argument for Gradio (its login form), or ``None`` when no login is set.

    A callable rather than the ``(user, password)`` tuple so the comparison stays constant-time.
    """
    if settings.auth is None:
        return None

    def login(username: str, password: str) -> bool:
        return check_login(settings, username or "", password or "")

    return login
