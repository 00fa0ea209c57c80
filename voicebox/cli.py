"""Command line: ``python -m voicebox [--host H] [--port P] [--data-dir D] [--share] [--auth U:P]``.

Flags override the ``VOICEBOX_*`` environment. Safe by default: the server binds 127.0.0.1, and a
public bind or a share link is refused unless a login is configured or ``--insecure-no-auth`` is
given explicitly (which prints a warning).
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .config import ConfigError, Settings, parse_auth, parse_port


class UnsafeLaunch(ValueError):
    """A public bind or share link was asked for without authentication."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m voicebox",
        description="voicebox: clone a voice from a few seconds of audio and speak any text with Qwen3-TTS.",
        epilog="Every option can also be set with its VOICEBOX_* environment variable (see README).",
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
    if not (public or share) or settings.auth is not None:
        return None
    what = "a share link" if share else f"binding {settings.host}"
    if not insecure_no_auth:
        raise UnsafeLaunch(
            f"Refusing {what} without a login: anyone who can reach it could use your voices. "
            "Set VOICEBOX_AUTH=user:password (or --auth user:password), or pass --insecure-no-auth "
            "if you really want it open."
        )
    return f"WARNING: {what} without a login (--insecure-no-auth): anyone who can reach it can use it."


def main(argv: Sequence[str] | None = None) -> int:
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
