"""Command line: ``python -m voicebox [--host H] [--port P] [--data-dir D] [--share] [--auth U:P]``,
``python -m voicebox users add|remove|list|token|revoke`` to manage accounts, and
``python -m voicebox convert-gguf DIR OUT --quant Q8_0`` to make GGUF files for the GGML engine.

Flags override the ``VOICEBOX_*`` environment. Safe by default: the server binds 127.0.0.1, and a
public bind or a share link is refused unless some account can log in (the users file,
``VOICEBOX_USERS`` or ``VOICEBOX_AUTH``) or ``--insecure-no-auth`` is given explicitly (which
prints a warning).

``users`` edits the users file of the configured data dir (:mod:`voicebox.users`); a running
server sees the change at its next request. Passwords are read with ``getpass`` (twice) or one
line of stdin (``--password-stdin``), never from the command line, where ``ps`` and the shell
history would show them. A new token goes alone to stdout, once; everything else to stderr.
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .auth import has_login
from .config import ConfigError, Settings, parse_auth, parse_port
from .users import MIN_PASSWORD, Users, UsersError


class UnsafeLaunch(ValueError):
    """A public bind or share link was asked for without authentication."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m voicebox",
        description="voicebox: clone a voice from a few seconds of audio and speak any text with Qwen3-TTS.",
        epilog="Every option can also be set with its VOICEBOX_* environment variable (see README). "
        "Accounts: python -m voicebox users add|remove|list|token|revoke (see users --help).",
    )
    parser.add_argument("--host", help="address to bind (default 127.0.0.1, VOICEBOX_HOST)")
    parser.add_argument("--port", help="port (default 7860, VOICEBOX_PORT)")
    parser.add_argument("--data-dir", help="where profiles, audio and caches live (default ./data)")
    parser.add_argument("--share", action="store_true", help="also open a public Gradio share link (needs auth)")
    parser.add_argument("--auth", metavar="USER:PASSWORD", help="require this login (VOICEBOX_AUTH)")
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="allow a public bind or share link without a login (anyone who can reach it can use it)",
    )
    parser.add_argument("--version", action="version", version=f"voicebox {__version__}")
    return parser


def is_loopback(host: str) -> bool:
    """True for localhost and addresses in 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def settings_from_args(args: argparse.Namespace, base: Settings) -> Settings:
    changes: dict[str, object] = {}
    if args.host:
        changes["host"] = args.host
    if args.port:
        changes["port"] = parse_port(args.port, "--port")
    if args.data_dir:
        changes["data_dir"] = Path(args.data_dir).expanduser()
    if args.auth:
        changes["auth"] = parse_auth(args.auth, "--auth")
    return base.with_overrides(**changes)


def check_exposure(settings: Settings, share: bool, insecure_no_auth: bool) -> str | None:
    """Refuse public exposure without a login; returns a warning when explicitly allowed."""
    public = not is_loopback(settings.host)
    if not (public or share) or has_login(settings):
        return None
    what = "a share link" if share else f"binding {settings.host}"
    if not insecure_no_auth:
        raise UnsafeLaunch(
            f"Refusing {what} without a login: anyone who can reach it could use your voices. "
            "Add an account (python -m voicebox users add NAME), or set VOICEBOX_USERS=name:password,... "
            "or VOICEBOX_AUTH=user:password (or --auth user:password), or pass --insecure-no-auth "
            "if you really want it open."
        )
    return f"WARNING: {what} without a login (--insecure-no-auth): anyone who can reach it can use it."


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["users"]:
        return users_main(argv[1:])
    if argv[:1] == ["convert-gguf"]:
        from .engines.gguf_convert import main as convert_gguf

        return convert_gguf(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args, Settings.from_env())
        warning = check_exposure(settings, args.share, args.insecure_no_auth)
    except (ConfigError, UnsafeLaunch) as exc:
        print(f"voicebox: {exc}", file=sys.stderr)
        return 2
    if warning:
        print(warning, file=sys.stderr)
    from .server import serve

    return serve(settings, share=args.share)


# ---- python -m voicebox users ... -----------------------------------------------------------
def build_users_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", help="the data dir whose users.json to edit (default ./data)")
    common.add_argument("--users-file", help="the users file itself (VOICEBOX_USERS_FILE)")
    parser = argparse.ArgumentParser(
        prog="python -m voicebox users",
        description="Accounts of a shared voicebox server: passwords (scrypt-hashed) and API tokens "
        "(SHA-256-hashed) in the users file. A running server sees changes at once.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", parents=[common], help="add an account (asks for its password twice)")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    remove = actions.add_parser("remove", parents=[common], help="delete an account and its tokens")
    remove.add_argument("name")
    actions.add_parser("list", parents=[common], help="names, where each password comes from, token labels")
    token = actions.add_parser("token", parents=[common], help="make an API token (printed once)")
    token.add_argument("name")
    token.add_argument("--label", help="what the token is for (default token1, token2, ...)")
    revoke = actions.add_parser("revoke", parents=[common], help="delete an API token by its label")
    revoke.add_argument("name")
    revoke.add_argument("label")
    return parser


def read_new_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if len(first) < MIN_PASSWORD:
        raise UsersError(f"The password is too short: use at least {MIN_PASSWORD} characters")
    if getpass.getpass("Password again: ") != first:
        raise UsersError("The two passwords differ; nothing was changed")
    return first


def users_main(argv: Sequence[str]) -> int:
    """``python -m voicebox users ACTION``: 0 done, 1 refused (taken or unknown name...), 2 bad setup."""
    args = build_users_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.data_dir:
            settings = settings.with_overrides(data_dir=Path(args.data_dir).expanduser())
        if args.users_file:
            settings = settings.with_overrides(users_file=Path(args.users_file).expanduser())
        users = Users.from_settings(settings)
    except ConfigError as exc:
        print(f"voicebox: {exc}", file=sys.stderr)
        return 2
    try:
        return run_users_action(users, args)
    except UsersError as exc:
        print(f"voicebox: {exc}", file=sys.stderr)
        return 1
    except (EOFError, KeyboardInterrupt):
        print("voicebox: cancelled; nothing was changed", file=sys.stderr)
        return 1


def run_users_action(users: Users, args: argparse.Namespace) -> int:
    if args.action == "list":
        accounts = users.all()
        if not accounts:
            print(f"No accounts (users file: {users.path}).", file=sys.stderr)
        for user in accounts:
            source = {"file": "users file", "": "tokens only"}.get(user.source, user.source)
            labels = ", ".join(t.label for t in user.tokens)
            tokens = f"{len(user.tokens)} token{'s' if len(user.tokens) != 1 else ''}"
            print(f"{user.name}\t{source}\t{tokens}{f' ({labels})' if labels else ''}")
    elif args.action == "add":
        users.check_new(args.name)  # before asking for a password
        user = users.add(args.name, read_new_password(args.password_stdin))
        print(f"Added {user.name} to {users.path}.", file=sys.stderr)
    elif args.action == "remove":
        user = users.remove(args.name)
        print(f"Removed {user.name} and {len(user.tokens)} token(s).", file=sys.stderr)
    elif args.action == "token":
        token, secret = users.issue_token(args.name, args.label)
        print(f"API token {token.label} for {args.name}; it is shown only this once:", file=sys.stderr)
        print(secret, flush=True)
    elif args.action == "revoke":
        token = users.revoke(args.name, args.label)
        print(f"Revoked {args.name}'s token {token.label}.", file=sys.stderr)
    return 0
