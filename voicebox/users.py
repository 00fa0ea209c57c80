"""Accounts: who may use a shared voicebox server, and how a request proves it.

Three sources merge into one :class:`Users` registry:

* the users file (``<data dir>/users.json``, or ``VOICEBOX_USERS_FILE``), managed with
  ``python -m voicebox users add|remove|list|token|revoke``: password hashes and API tokens;
* ``VOICEBOX_USERS=alice:pw,bob:pw`` for quick setups, hashed in memory when the server starts;
* ``VOICEBOX_AUTH=user:password``, the original single login, as one more account.

An account named in the environment takes its password from there; its API tokens still live in
the users file. ``VOICEBOX_API_TOKEN`` (the original shared token) acts as the ``VOICEBOX_AUTH``
account when one is set, else as the account :data:`API_TOKEN_USER`.

Why it is built this way:

* **Passwords** are hashed with scrypt (``hashlib.scrypt``: standard library, memory-hard), a
  random 16-byte salt each, the parameters stored beside the hash so they can be raised later
  without invalidating old hashes. The plain text is never written anywhere.
* **Unknown names** cost the same as wrong passwords: :meth:`Users.verify` runs scrypt against a
  dummy hash, so timing does not reveal which names exist (and the REST body is the same).
* **Tokens** are ``vb_`` + 32 random bytes (``secrets.token_urlsafe``), shown once and stored as
  SHA-256. A slow KDF is for guessable passwords; a token has 256 bits of entropy, so its hash
  cannot be reversed by guessing, and a fast hash lets a bearer request be checked with one
  dictionary look-up. The prefix makes a leaked token recognisable (secret scanners, logs).
* **One scrypt per request would be too slow**, and HTTP Basic sends the password every time: a
  correct login is remembered in memory under an HMAC of name and password keyed by a
  per-process random key (never the password), for as long as the account's hash is unchanged;
  at most :data:`KDF_SLOTS` scrypt runs at once, so a flood of wrong passwords cannot exhaust memory.
* **Changes apply at once**: the registry re-reads the file when its inode, size or time changes
  (one ``stat`` per check), so ``users remove`` or ``revoke`` locks someone out of a running
  server. Writes are atomic and 0600 (:func:`voicebox.atomic.atomic_write_bytes`) under a lock
  file, so the CLI and the server (recording when a token was last used) keep each other's changes.
* **Once accounts exist the server stays locked**: removing the last one leaves nobody able to
  log in; it never turns a running server open.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from .atomic import atomic_write_bytes
from .config import ConfigError, Settings, valid_account_name
from .passwords import PasswordHash, token_digest

log = logging.getLogger(__name__)

MIN_PASSWORD = 8
TOKEN_PREFIX = "vb_"
#: Who ``VOICEBOX_API_TOKEN`` is when no ``VOICEBOX_AUTH`` account is set.
API_TOKEN_USER = "api"
FILE_VERSION = 1
#: A token's ``last_used`` is written to the file at most this often (seconds).
TOUCH_EVERY = 3600.0
_HITS_MAX = 1024

T = TypeVar("T")


class UsersError(ValueError):
    """An account action was refused (taken or unknown name, short password); one line for the user."""


class UsersFileError(ConfigError):
    """The users file cannot be used; start-up stops rather than serving without its accounts."""


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


#: What an unknown name is checked against, so it costs as much as a known one.
_DUMMY = PasswordHash(salt=b"\0" * 16, digest=b"\0" * 32)


@dataclass(frozen=True)
class Token:
    """An API token as stored: a label, its SHA-256 and times. The token itself is never kept."""

    label: str
    sha256: str = field(repr=False)
    created_at: str = ""
    last_used: str | None = None


@dataclass(frozen=True)
class User:
    """Who a login or a request is (``request.state.user`` in the REST API). Holds no secret."""

    name: str
    created_at: str = ""
    tokens: tuple[Token, ...] = ()
    #: Where the password comes from: ``file``, ``VOICEBOX_USERS``, ``VOICEBOX_AUTH``;
    #: ``VOICEBOX_API_TOKEN`` for the shared token's account; ``""``: none (tokens only).
    source: str = "file"


@dataclass(frozen=True)
class _Account:
    user: User
    password: PasswordHash | None = field(default=None, repr=False)


class Users:
    """The accounts of one configuration, kept in step with the users file."""

    def __init__(
        self, path: Path, env: Sequence[tuple[str, str, str]] = (), api_token: str | None = None
    ) -> None:
        """``env``: (name, password, variable) of accounts the environment sets; hashed here.

        Raises:
            UsersFileError: the users file exists but cannot be read or is damaged.
        """
        self.path = Path(path)
        self._env = {name: _Account(User(name, source=var), PasswordHash.of(pw)) for name, pw, var in env}
        self._api_token = hashlib.sha256(api_token.encode("utf-8")).digest() if api_token else None
        auth_names = [name for name, _, var in env if var == "VOICEBOX_AUTH"]
        self._api_name = auth_names[0] if auth_names else API_TOKEN_USER
        self._lock = threading.RLock()
        self._stamp: object = object()  # never equal to a stat: the first check loads
        self._accounts: dict[str, _Account] = {}
        self._tokens: dict[str, tuple[str, Token]] = {}
        self._hits: dict[bytes, tuple[str, bytes]] = {}
        self._hit_key = secrets.token_bytes(32)
        self._touched: dict[str, float] = {}
        self._ever_required = False
        self._refresh(strict=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> Users:
        env = [(name, password, "VOICEBOX_USERS") for name, password in settings.users]
        if settings.auth is not None:
            if settings.auth[0] in dict(settings.users):
                raise ConfigError(f"VOICEBOX_AUTH and VOICEBOX_USERS both name {settings.auth[0]}: keep one")
            env.append((*settings.auth, "VOICEBOX_AUTH"))
        return cls(settings.users_path, env, settings.api_token)

    # ---- reading -------------------------------------------------------------------------
    def _refresh(self, strict: bool = False) -> None:
        """Reload when the file changed (inode, size or time). A broken file keeps the accounts
        loaded before (logged), except at start-up (``strict``), which it stops."""
        try:
            st = os.stat(self.path)
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            stamp = None
        except OSError as exc:
            if strict:
                raise UsersFileError(f"Cannot read the users file {self.path}: {exc.strerror}") from None
            return
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            try:
                self._install(self._read() if stamp is not None else {})
            except UsersFileError as exc:
                if strict:
                    raise
                log.error("%s; keeping the accounts loaded before", exc)
            self._stamp = stamp

    def _read(self) -> dict[str, _Account]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if os.name == "posix" and self.path.stat().st_mode & 0o077:
                log.warning("%s can be read by other users: chmod 600 it", self.path)
        except OSError as exc:
            raise UsersFileError(f"Cannot read the users file {self.path}: {exc.strerror}") from None
        except ValueError as exc:  # JSON or UTF-8
            raise UsersFileError(f"{self.path} is not JSON ({exc}); fix or restore it") from None
        try:
            return _parse(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise UsersFileError(f"{self.path} is damaged ({exc}); fix or restore it") from None

    def _install(self, stored: dict[str, _Account]) -> None:
        accounts = dict(stored)
        for name, env in self._env.items():
            kept = accounts.get(name)
            if kept is not None and kept.password is not None:
                log.warning("%s's password comes from %s, not from %s", name, env.user.source, self.path)
            user = env.user
            if kept is not None:  # its tokens (and when it was first stored) come from the file
                user = replace(user, tokens=kept.user.tokens, created_at=kept.user.created_at)
            accounts[name] = _Account(user, env.password)
        self._accounts = accounts
        self._tokens = {t.sha256: (name, t) for name, a in accounts.items() for t in a.user.tokens}
        self._hits = {}
        self._ever_required = self._ever_required or bool(accounts) or self._api_token is not None

    # ---- questions -----------------------------------------------------------------------
    @property
    def required(self) -> bool:
        """Whether requests must prove who they are: an account or the API token exists, or did."""
        self._refresh()
        return self._ever_required

    @property
    def has_logins(self) -> bool:
        """Whether any account can log in with a password (the UI's login form, HTTP Basic)."""
        self._refresh()
        return any(a.password is not None for a in self._accounts.values())

    def all(self) -> list[User]:
        self._refresh()
        return sorted((a.user for a in self._accounts.values()), key=lambda u: u.name)

    def get(self, name: str) -> User | None:
        self._refresh()
        account = self._accounts.get(name)
        return account.user if account else None

    def verify(self, name: str, password: str) -> User | None:
        """The account when ``password`` is its password; ``None`` otherwise, in the same time for
        a wrong password, an unknown name and an account without a password."""
        self._refresh()
        account, hits = self._accounts.get(name), self._hits
        hashed = account.password if account is not None else None
        pair = f"{name}\0{password}".encode("utf-8", "surrogatepass")
        key = hmac.new(self._hit_key, pair, "sha256").digest()
        if account is not None and hashed is not None and hits.get(key) == (name, hashed.digest):
            return account.user  # checked with scrypt before, and the hash has not changed since
        matched = (hashed or _DUMMY).matches(password)
        if account is None or hashed is None or not matched:
            return None
        if len(hits) >= _HITS_MAX:
            hits.clear()
        hits[key] = (name, hashed.digest)
        return account.user

    def check_token(self, token: str) -> User | None:
        """The account holding the API token ``token`` (or ``VOICEBOX_API_TOKEN``), else ``None``."""
        self._refresh()
        digest = token_digest(token)
        found = self._tokens.get(digest)
        if found is not None and hmac.compare_digest(found[1].sha256, digest):
            account = self._accounts.get(found[0])
            if account is not None:
                self._touch(found[0], found[1])
                return account.user
        if self._api_token is not None and hmac.compare_digest(bytes.fromhex(digest), self._api_token):
            account = self._accounts.get(self._api_name)
            return account.user if account else User(self._api_name, source="VOICEBOX_API_TOKEN")
        return None

    # ---- changes (the users file) --------------------------------------------------------
    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Serialise read-change-write of the file across processes (POSIX ``flock``)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # Windows: atomic writes only
            with self._lock:
                yield
            return
        fd = os.open(self.path.with_name(f".{self.path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _edit(self, change: Callable[[dict[str, _Account]], T]) -> T:
        with self._file_lock():
            stored = self._read() if self.path.exists() else {}
            result = change(stored)
            atomic_write_bytes(self.path, _dump(stored), mode=0o600)
        self._refresh()
        return result

    def _env_source(self, name: str) -> str | None:
        account = self._env.get(name)
        return account.user.source if account else None

    def check_new(self, name: str) -> None:
        """Refuse a name :meth:`add` would refuse (the CLI asks before reading a password)."""
        if not valid_account_name(name):
            raise UsersError(f"{name!r} is not an account name: use letters, digits and ._@- (up to 64)")
        if self._env_source(name):
            raise UsersError(f"{name} is set by {self._env_source(name)}; change its password there")
        self._refresh()
        known = self._accounts.get(name)
        if known is not None and known.password is not None:
            raise UsersError(f"The name {name} is taken: choose another, or remove it first")

    def add(self, name: str, password: str) -> User:
        """A new account in the users file."""
        self.check_new(name)
        if len(password) < MIN_PASSWORD:
            raise UsersError(f"The password is too short: use at least {MIN_PASSWORD} characters")
        hashed = PasswordHash.of(password)

        def change(stored: dict[str, _Account]) -> User:
            kept = stored.get(name)
            if kept is not None and kept.password is not None:
                raise UsersError(f"The name {name} is taken: choose another, or remove it first")
            user = User(name, utc_now(), kept.user.tokens if kept else (), "file")
            stored[name] = _Account(user, hashed)
            return user

        return self._edit(change)

    def remove(self, name: str) -> User:
        """Delete an account of the users file with its tokens (they stop working at once)."""

        def change(stored: dict[str, _Account]) -> User:
            if name in stored:
                return stored.pop(name).user
            if self._env_source(name):
                raise UsersError(f"{name} is set by {self._env_source(name)}; remove it there")
            raise UsersError(f"No account named {name}: see python -m voicebox users list")

        return self._edit(change)

    def issue_token(self, name: str, label: str | None = None) -> tuple[Token, str]:
        """A new API token for ``name``: (its stored record, the token to show once)."""
        if self.get(name) is None:
            raise UsersError(f"No account named {name}: see python -m voicebox users list")
        fits = label is None or (0 < len(label) <= 64 and label.isprintable() and label.strip() == label)
        if not fits:
            raise UsersError("A token label is 1-64 printable characters, no spaces around them")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)

        def change(stored: dict[str, _Account]) -> Token:
            kept = stored.get(name) or _Account(User(name, utc_now(), (), ""))
            labels = {t.label for t in kept.user.tokens}
            free = (f"token{i}" for i in range(1, len(labels) + 2) if f"token{i}" not in labels)
            chosen = label or next(free)
            if chosen in labels:
                raise UsersError(f"{name} already has a token labelled {chosen}: choose another label")
            token = Token(chosen, token_digest(secret), utc_now())
            stored[name] = replace(kept, user=replace(kept.user, tokens=(*kept.user.tokens, token)))
            return token

        return self._edit(change), secret

    def revoke(self, name: str, label: str) -> Token:
        """Delete the token ``label`` of ``name``; it stops working at once."""

        def change(stored: dict[str, _Account]) -> Token:
            kept = stored.get(name)
            found = [t for t in kept.user.tokens if t.label == label] if kept else []
            if not found:
                raise UsersError(f"{name} has no token labelled {label}: see python -m voicebox users list")
            rest = tuple(t for t in kept.user.tokens if t.label != label)  # type: ignore[union-attr]
            stored[name] = replace(kept, user=replace(kept.user, tokens=rest))  # type: ignore[arg-type]
            return found[0]

        return self._edit(change)

    def _touch(self, name: str, token: Token) -> None:
        """Record when a token was last used: once per :data:`TOUCH_EVERY` seconds and process,
        so a busy client does not rewrite the file on every request."""
        now = time.monotonic()
        if now - self._touched.get(token.sha256, -TOUCH_EVERY) < TOUCH_EVERY:
            return
        self._touched[token.sha256] = now

        def change(stored: dict[str, _Account]) -> None:
            kept = stored.get(name)
            if kept is not None:
                used = utc_now()
                tokens = tuple(
                    replace(t, last_used=used) if t.sha256 == token.sha256 else t for t in kept.user.tokens
                )
                stored[name] = replace(kept, user=replace(kept.user, tokens=tokens))

        try:
            self._edit(change)
        except (OSError, UsersFileError) as exc:  # a read-only data dir must not refuse the request
            log.warning("Could not record when %s's token %s was used: %s", name, token.label, exc)


def _parse(data: Any) -> dict[str, _Account]:
    if not isinstance(data, dict) or data.get("version") != FILE_VERSION:
        raise ValueError(f"expected version {FILE_VERSION}")
    accounts: dict[str, _Account] = {}
    for entry in data["users"]:
        name = str(entry["name"])
        if not valid_account_name(name) or name in accounts:
            raise ValueError(f"bad or repeated account name {name!r}")
        password = PasswordHash.from_json(entry["password"]) if entry.get("password") else None
        tokens = []
        for item in entry.get("tokens") or []:
            digest = str(item["sha256"])
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"a token of {name} has a bad sha256")
            created, used = str(item.get("created_at", "")), item.get("last_used")
            tokens.append(Token(str(item["label"]), digest, created, str(used) if used else None))
        user = User(name, str(entry.get("created_at", "")), tuple(tokens), "file" if password else "")
        accounts[name] = _Account(user, password)
    return accounts


def _dump(accounts: dict[str, _Account]) -> bytes:
    users = [
        {
            "name": name,
            "created_at": account.user.created_at,
            "password": account.password.to_json() if account.password else None,
            "tokens": [
                {"label": t.label, "sha256": t.sha256, "created_at": t.created_at, "last_used": t.last_used}
                for t in account.user.tokens
            ],
        }
        for name, account in sorted(accounts.items())
    ]
    return (json.dumps({"version": FILE_VERSION, "users": users}, indent=2) + "\n").encode("utf-8")
