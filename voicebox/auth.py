"""Credential checks shared by the REST API and the Gradio login.

Who may come in is one :class:`voicebox.users.Users` registry per configuration
(:func:`registry`): accounts of the users file, of ``VOICEBOX_USERS`` and of ``VOICEBOX_AUTH``,
each with its API tokens, plus the shared ``VOICEBOX_API_TOKEN``. The REST API takes HTTP Basic
(name and password) or ``Authorization: Bearer <token>`` (scripts and OpenAI-style clients,
which cannot fill in a login form); the UI's login form checks the same passwords, so a name
means the same person in both.

With nothing configured there is one user and no login, as before: every check passes and
:func:`resolve` answers ``None`` ("no accounts"). Nothing here logs or echoes a credential.

Whose data an account sees (:func:`owner_for`, :mod:`voicebox.owners`): its own, under its name,
except the original single login (``VOICEBOX_AUTH``) and the shared ``VOICEBOX_API_TOKEN``, which
*are* the local user (owner ``""``): a server that had one login before accounts existed keeps
showing that person the data it always showed them, and adding accounts later does not hide it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from functools import lru_cache

from .config import Settings
from .users import User, Users

__all__ = [
    "LOCAL_SOURCES", "REALM", "auth_required", "challenge", "check_credentials", "check_login", "gradio_auth",
    "has_login", "login_owner", "owner_for", "parse_basic", "public", "registry", "resolve",
]

REALM = "voicebox"
#: Where an account comes from when it is the one local user of a server from before accounts.
LOCAL_SOURCES = frozenset({"VOICEBOX_AUTH", "VOICEBOX_API_TOKEN"})


@lru_cache(maxsize=64)
def registry(settings: Settings) -> Users:
    """The accounts of ``settings``, built once per configuration (the environment's passwords are
    hashed then) and kept in step with the users file afterwards.

    Raises:
        voicebox.users.UsersFileError: the users file is damaged (a :class:`ConfigError`).
    """
    return Users.from_settings(settings)


def public(settings: Settings) -> bool:
    """Whether strangers may reach this server without an account: "Sign in with Hugging Face" or
    anonymous libraries are on (:mod:`voicebox.identity`). Then nobody is the local user."""
    return settings.hf_sign_in or settings.anonymous


def auth_required(settings: Settings) -> bool:
    """True when requests must prove who they are: an account or a token is configured, or the
    server is :func:`public` (whose visitors' libraries the REST API cannot tell apart: it takes
    an account's credentials or nothing)."""
    return registry(settings).required or public(settings)


def has_login(settings: Settings) -> bool:
    """True when some account can log in with a password: what makes a public bind or a share
    link safe (a token alone protects the API, not the UI)."""
    return registry(settings).has_logins


def check_login(settings: Settings, username: str, password: str) -> bool:
    """True when ``username``/``password`` is an account's login (False when there are none)."""
    return registry(settings).verify(username, password) is not None


def parse_basic(value: str) -> tuple[str, str] | None:
    """``(user, password)`` from the base64 part of a Basic header; ``None`` if it is malformed."""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def resolve(settings: Settings, authorization: str | None) -> User | None:
    """Who an ``Authorization`` header proves to be: ``Basic`` name:password or ``Bearer <token>``
    (the scheme in any case); ``None`` for anything else, malformed or wrong.

    Runs scrypt for a password not seen before: call it off the event loop."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "basic":
        pair = parse_basic(value)
        return registry(settings).verify(*pair) if pair is not None else None
    if scheme == "bearer" and value:
        return registry(settings).check_token(value)
    return None


def check_credentials(settings: Settings, authorization: str | None) -> bool:
    """Whether an ``Authorization`` header grants access to the API (always, when no accounts)."""
    return not auth_required(settings) or resolve(settings, authorization) is not None


def challenge(settings: Settings) -> dict[str, str]:
    """The ``WWW-Authenticate`` header of a 401: Basic when a password login exists (browsers then
    ask for it), else Bearer."""
    scheme = "Basic" if has_login(settings) else "Bearer"
    return {"WWW-Authenticate": f'{scheme} realm="{REALM}"'}


def gradio_auth(settings: Settings) -> Callable[[str, str], bool] | None:
    """The ``auth`` argument for Gradio (its login form), or ``None`` when no account has a password.

    Decided when the UI is mounted: add the first account before starting the server. A callable
    rather than a list of pairs, so Gradio checks the registry's hashes (same accounts, same
    constant-time verify) instead of holding passwords.
    """
    if not has_login(settings):
        return None
    users = registry(settings)

    def login(username: str, password: str) -> bool:
        return users.verify(username or "", password or "") is not None

    return login


def owner_for(user: User | None) -> str:
    """The owner (:mod:`voicebox.owners`) whose data ``user``'s requests read and change: ``""``
    without accounts and for the original single login or shared token (see the module
    docstring), else the account's name."""
    if user is None or user.source in LOCAL_SOURCES:
        return ""
    return user.name


def login_owner(settings: Settings, username: str | None) -> str:
    """:func:`owner_for` of a UI login (Gradio's ``request.username``; ``None`` without a login).
    A name the registry no longer knows (removed while logged in) keeps its own, now empty,
    space rather than falling back to the local user's."""
    if not username:
        return ""
    user = registry(settings).get(username)
    return owner_for(user) if user is not None else username
