"""Settings read once from ``VOICEBOX_*`` environment variables.

One immutable :class:`Settings` object is built at start-up and passed down, so nothing below the
entry points reads the environment. A bad value raises :class:`ConfigError` whose message is a
single line naming the variable and what it accepts; the CLI prints it and exits.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

DEVICES = ("auto", "cpu", "cuda", "mps")
QUANTIZE_CHOICES = ("auto", "on", "off")
CUDA_GRAPHS_CHOICES = ("auto", "off")
#: Which speech engine runs (see :mod:`voicebox.backends`) and the GGML engine's weights;
#: ``remote``: vLLM-Omni servers at ``VOICEBOX_REMOTE_URLS`` (:mod:`voicebox.remote`).
BACKEND_CHOICES = ("auto", "torch", "ggml", "remote")
GGUF_QUANT_CHOICES = ("Q8_0", "Q4_K_M", "BF16", "F32")
#: How strictly takes are checked (see :mod:`voicebox.quality`); ``auto``: ``retake`` on a GPU,
#: ``check`` on a CPU, where every re-take costs as much again as the sentence took.
QUALITY_CHOICES = ("auto", "off", "check", "retake")
#: How per-user quotas are chosen (:mod:`voicebox.quotas`): ``auto`` is the public preset once the
#: server is shared (a Hugging Face Space, or two or more accounts), ``public`` always, ``off`` never.
QUOTA_CHOICES = ("auto", "public", "off")
#: ``VOICEBOX_QUOTA_*`` -> (the :class:`voicebox.quotas.QuotaLimits` field it sets, whole numbers only).
QUOTA_VARIABLES: dict[str, tuple[str, bool]] = {
    "VOICEBOX_QUOTA_GENERATIONS_PER_HOUR": ("generations_per_hour", True),
    "VOICEBOX_QUOTA_AUDIO_SECONDS_PER_DAY": ("audio_seconds_per_day", False),
    "VOICEBOX_QUOTA_PROFILES": ("profiles", True),
    "VOICEBOX_QUOTA_SAMPLES_PER_PROFILE": ("samples_per_profile", True),
    "VOICEBOX_QUOTA_STORAGE_MB": ("storage_mb", False),
}

#: Documented defaults, one per variable. README's configuration table mirrors this mapping.
DEFAULTS: dict[str, str] = {
    "VOICEBOX_DATA_DIR": "./data",
    "VOICEBOX_HOST": "127.0.0.1",
    "VOICEBOX_PORT": "7860",
    "VOICEBOX_TTS_MODEL": "Qwen/Qwen3-TTS-12Hz-0.6B-Base",
    "VOICEBOX_TTS_MODEL_LARGE": "Qwen/Qwen3-TTS-12Hz-1.7B-Base",
    "VOICEBOX_DESIGN_MODEL": "Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign",
    "VOICEBOX_SPEAKER_MODEL": "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice",
    "VOICEBOX_WHISPER_MODEL": "auto",
    "VOICEBOX_DEVICE": "auto",
    "VOICEBOX_AUTH": "",
    "VOICEBOX_API_TOKEN": "",
    "VOICEBOX_USERS": "",
    "VOICEBOX_USERS_FILE": "",
    "VOICEBOX_MAX_UPLOAD_MB": "50",
    "VOICEBOX_MAX_SAMPLE_SECONDS": "30",
    "VOICEBOX_CPU_INT8": "auto",
    "VOICEBOX_CUDA_GRAPHS": "auto",
    "VOICEBOX_BACKEND": "auto",
    "VOICEBOX_GGUF_QUANT": "Q8_0",
    "VOICEBOX_REMOTE_URLS": "",
    "VOICEBOX_REMOTE_API_KEY": "",
    "VOICEBOX_REMOTE_TIMEOUT": "120",
    "VOICEBOX_REMOTE_CONCURRENCY": "4",
    "VOICEBOX_MAX_FRAMES": "0",
    "VOICEBOX_QUALITY": "auto",
    "VOICEBOX_MAX_TAKES": "3",
    "VOICEBOX_QUOTAS": "auto",
    **{name: "" for name in QUOTA_VARIABLES},  # empty: the preset's value
    "VOICEBOX_RATE_LIMIT": "auto",
    "VOICEBOX_ANONYMOUS": "0",
    "VOICEBOX_ANONYMOUS_DAYS": "30",
    "VOICEBOX_MCP": "1",
}


#: Account names: letters, digits and ``._@-``, up to 64, starting with a letter or digit. No
#: ``:`` (HTTP Basic splits the name from the password there), no ``,`` (``VOICEBOX_USERS``
#: separates accounts with it), no spaces, so a name reads the same in a header, a log or a list.
ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class ConfigError(ValueError):
    """A setting has a value voicebox cannot use; the message is one line for the user."""


@dataclass(frozen=True)
class Settings:
    """Everything voicebox is configured with. Build it with :meth:`from_env`."""

    data_dir: Path = Path(DEFAULTS["VOICEBOX_DATA_DIR"])
    host: str = DEFAULTS["VOICEBOX_HOST"]
    port: int = 7860
    tts_model: str = DEFAULTS["VOICEBOX_TTS_MODEL"]
    tts_model_large: str = DEFAULTS["VOICEBOX_TTS_MODEL_LARGE"]
    #: The VoiceDesign checkpoint (:mod:`voicebox.design`); ``""`` (``off`` in the variable): no voice design.
    design_model: str = DEFAULTS["VOICEBOX_DESIGN_MODEL"]
    #: The CustomVoice checkpoint of the built-in speakers (:mod:`voicebox.speakers`); ``""``: none.
    speaker_model: str = DEFAULTS["VOICEBOX_SPEAKER_MODEL"]
    whisper_model: str = "auto"
    device: str = "auto"
    auth: tuple[str, str] | None = field(default=None, repr=False)
    api_token: str | None = field(default=None, repr=False)
    #: Accounts of ``VOICEBOX_USERS`` as (name, password); hashed by :class:`voicebox.users.Users`.
    users: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    #: The users file (``VOICEBOX_USERS_FILE``); ``None``: ``users.json`` in the data dir.
    users_file: Path | None = None
    max_upload_mb: float = 50.0
    max_sample_seconds: float = 30.0
    cpu_int8: str = "auto"
    #: ``auto``: CUDA graphs (faster-qwen3-tts) when on CUDA and installed; ``off``: voicebox's loop.
    cuda_graphs: str = "auto"
    #: Speech engine: ``auto`` (GGML on a CPU when it can run, else torch), ``torch`` or ``ggml``.
    backend: str = "auto"
    #: Weights of the GGML engine's talker: ``Q8_0``, ``Q4_K_M``, ``BF16`` or ``F32``.
    gguf_quant: str = "Q8_0"
    #: ``remote``: base URLs of the vLLM-Omni servers, their bearer key (never shown), seconds a
    #: request may stay silent, and chunks of one request in flight at once.
    remote_urls: tuple[str, ...] = ()
    remote_api_key: str | None = field(default=None, repr=False)
    remote_timeout: float = 120.0
    remote_concurrency: int = 4
    #: Hard cap on codec frames (12.5 per second) per text chunk; 0 derives it from the text.
    max_frames: int = 0
    #: Default quality gate of a take: ``auto``, ``off``, ``check`` or ``retake``.
    quality: str = "auto"
    #: Most takes of one sentence under ``retake``.
    max_takes: int = 3
    #: Per-user quotas: ``auto``, ``public`` or ``off`` (see :data:`QUOTA_CHOICES`); ``from_env``
    #: turns ``auto`` into ``public`` on a Hugging Face Space.
    quotas: str = "auto"
    #: Limits set one by one (``VOICEBOX_QUOTA_*``): (field, limit, or ``None`` for "off"); they
    #: win over the preset, for everyone.
    quota_overrides: tuple[tuple[str, float | None], ...] = ()
    #: REST requests per user and per client address (``limits`` syntax, e.g. ``120/minute``);
    #: ``auto``: 120/minute once the server is shared, ``off``: never.
    rate_limit: str = "auto"
    #: "Sign in with Hugging Face": on a Space whose front matter has ``hf_oauth: true`` (the
    #: platform then sets ``OAUTH_CLIENT_ID``); see :mod:`voicebox.identity`.
    hf_sign_in: bool = False
    #: A private library per browser for visitors who do not sign in (``VOICEBOX_ANONYMOUS``),
    #: erased after ``anonymous_days`` without a visit.
    anonymous: bool = False
    anonymous_days: float = 30.0
    #: Gradio's MCP server for AI assistants (``VOICEBOX_MCP``; :mod:`voicebox.ui.mcp_guard`).
    mcp: bool = True

    # ---- derived data-dir layout -------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.data_dir / "voicebox.json"

    @property
    def samples_dir(self) -> Path:
        return self.data_dir / "samples"

    @property
    def generations_dir(self) -> Path:
        return self.data_dir / "generations"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def precision_memory(self) -> Path:
        """Where the CPU loop remembers the precision it timed on this machine (every engine)."""
        return self.cache_dir / "loop-precision.json"

    @property
    def users_path(self) -> Path:
        return self.users_file if self.users_file is not None else self.data_dir / "users.json"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def ensure_dirs(self) -> None:
        """Create the data-dir layout (idempotent)."""
        for d in (self.data_dir, self.samples_dir, self.generations_dir, self.cache_dir):
            d.mkdir(parents=True, exist_ok=True)

    def with_overrides(self, **changes: object) -> "Settings":
        """A copy with some fields replaced (the CLI's flags override the environment)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Read every ``VOICEBOX_*`` variable, falling back to :data:`DEFAULTS`.

        Raises:
            ConfigError: naming the first variable whose value is not allowed.
        """
        source = os.environ if env is None else env

        def get(name: str) -> str:
            value = source.get(name)
            return DEFAULTS[name] if value is None or value.strip() == "" else value.strip()

        auth = parse_auth(get("VOICEBOX_AUTH"), "VOICEBOX_AUTH")
        users = parse_users(get("VOICEBOX_USERS"), "VOICEBOX_USERS")
        if auth is not None and auth[0] in dict(users):
            raise ConfigError(f"VOICEBOX_AUTH and VOICEBOX_USERS both name {auth[0]}: keep one of them")
        users_file = get("VOICEBOX_USERS_FILE")
        quotas = parse_choice(get("VOICEBOX_QUOTAS").lower(), QUOTA_CHOICES, "VOICEBOX_QUOTAS")
        backend = parse_choice(get("VOICEBOX_BACKEND").lower(), BACKEND_CHOICES, "VOICEBOX_BACKEND")
        remote_urls = parse_urls(get("VOICEBOX_REMOTE_URLS"), "VOICEBOX_REMOTE_URLS")
        if backend == "remote" and not remote_urls:
            raise ConfigError("VOICEBOX_BACKEND=remote needs VOICEBOX_REMOTE_URLS: the vLLM-Omni servers' "
                              "base URLs, e.g. http://gpu1:8091,http://gpu2:8091")
        return cls(
            data_dir=Path(get("VOICEBOX_DATA_DIR")).expanduser(),
            host=get("VOICEBOX_HOST"),
            port=parse_port(get("VOICEBOX_PORT"), "VOICEBOX_PORT"),
            tts_model=get("VOICEBOX_TTS_MODEL"),
            tts_model_large="" if get("VOICEBOX_TTS_MODEL_LARGE").lower() == "off" else get("VOICEBOX_TTS_MODEL_LARGE"),
            design_model="" if get("VOICEBOX_DESIGN_MODEL").lower() == "off" else get("VOICEBOX_DESIGN_MODEL"),
            speaker_model="" if get("VOICEBOX_SPEAKER_MODEL").lower() == "off" else get("VOICEBOX_SPEAKER_MODEL"),
            whisper_model=get("VOICEBOX_WHISPER_MODEL"),
            device=parse_choice(get("VOICEBOX_DEVICE").lower(), DEVICES, "VOICEBOX_DEVICE"),
            auth=auth,
            api_token=get("VOICEBOX_API_TOKEN") or None,
            users=users,
            users_file=Path(users_file).expanduser() if users_file else None,
            max_upload_mb=parse_positive(get("VOICEBOX_MAX_UPLOAD_MB"), "VOICEBOX_MAX_UPLOAD_MB"),
            max_sample_seconds=parse_positive(
                get("VOICEBOX_MAX_SAMPLE_SECONDS"), "VOICEBOX_MAX_SAMPLE_SECONDS"
            ),
            cpu_int8=parse_choice(get("VOICEBOX_CPU_INT8").lower(), QUANTIZE_CHOICES, "VOICEBOX_CPU_INT8"),
            cuda_graphs=parse_choice(
                get("VOICEBOX_CUDA_GRAPHS").lower(), CUDA_GRAPHS_CHOICES, "VOICEBOX_CUDA_GRAPHS"
            ),
            backend=backend,
            remote_urls=remote_urls,
            remote_api_key=get("VOICEBOX_REMOTE_API_KEY") or None,
            remote_timeout=parse_positive(get("VOICEBOX_REMOTE_TIMEOUT"), "VOICEBOX_REMOTE_TIMEOUT"),
            remote_concurrency=parse_concurrency(get("VOICEBOX_REMOTE_CONCURRENCY"), "VOICEBOX_REMOTE_CONCURRENCY"),
            gguf_quant=parse_choice(get("VOICEBOX_GGUF_QUANT").upper(), GGUF_QUANT_CHOICES, "VOICEBOX_GGUF_QUANT"),
            max_frames=parse_count(get("VOICEBOX_MAX_FRAMES"), "VOICEBOX_MAX_FRAMES"),
            quality=parse_choice(get("VOICEBOX_QUALITY").lower(), QUALITY_CHOICES, "VOICEBOX_QUALITY"),
            max_takes=parse_takes(get("VOICEBOX_MAX_TAKES"), "VOICEBOX_MAX_TAKES"),
            # a Space is public: SPACE_ID is what voicebox.hf_spaces.on_spaces looks for
            quotas="public" if quotas == "auto" and source.get("SPACE_ID") else quotas,
            quota_overrides=tuple(
                (field_name, parse_quota(get(name), name, whole))
                for name, (field_name, whole) in QUOTA_VARIABLES.items()
                if get(name)
            ),
            rate_limit=parse_rate_limit(get("VOICEBOX_RATE_LIMIT"), "VOICEBOX_RATE_LIMIT"),
            hf_sign_in=bool(source.get("SPACE_ID") and source.get("OAUTH_CLIENT_ID")),
            anonymous=parse_flag(get("VOICEBOX_ANONYMOUS"), "VOICEBOX_ANONYMOUS"),
            anonymous_days=parse_positive(get("VOICEBOX_ANONYMOUS_DAYS"), "VOICEBOX_ANONYMOUS_DAYS"),
            mcp=parse_flag(get("VOICEBOX_MCP"), "VOICEBOX_MCP"),
        )


def parse_port(value: str, name: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a port: use a whole number from 1 to 65535") from None
    if not 1 <= port <= 65535:
        raise ConfigError(f"{name}={value!r} is out of range: use a whole number from 1 to 65535")
    return port


def parse_positive(value: str, name: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number: use a positive number") from None
    if not number > 0 or number != number or number == float("inf"):
        raise ConfigError(f"{name}={value!r} must be a positive number")
    return number


def parse_takes(value: str, name: str) -> int:
    """Takes of one sentence: 1 to 10 (each costs as much again as the sentence took)."""
    number = parse_count(value, name)
    if not 1 <= number <= 10:
        raise ConfigError(f"{name}={value!r} must be a whole number from 1 to 10")
    return number


def parse_concurrency(value: str, name: str) -> int:
    """Requests in flight at once: 1 to 64."""
    number = parse_count(value, name)
    if not 1 <= number <= 64:
        raise ConfigError(f"{name}={value!r} must be a whole number from 1 to 64")
    return number


def parse_urls(value: str, name: str) -> tuple[str, ...]:
    """Comma-separated http(s) base URLs, without a trailing slash; none when empty."""
    urls: list[str] = []
    for number, part in enumerate((p.strip() for p in value.split(",")), 1):
        if not part:
            continue
        match = re.fullmatch(r"(https?)://([^/\s?#@]+)(/[^\s?#]*)?", part, re.IGNORECASE)
        if match is None:  # the value is not echoed: it might hold a password
            raise ConfigError(f"{name}: entry {number} is not a base URL; use http://host:port or https://host "
                              "(no user:password@ - the key goes in VOICEBOX_REMOTE_API_KEY)")
        url = part.rstrip("/")
        if url not in urls:
            urls.append(url)
    return tuple(urls)


def parse_count(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a whole number: use 0 (automatic) or more") from None
    if number < 0:
        raise ConfigError(f"{name}={value!r} must be 0 (automatic) or more")
    return number


def parse_quota(value: str, name: str, whole: bool) -> float | None:
    """A limit: ``off`` (none) or a positive number (a whole one for counts)."""
    if value.lower() in ("off", "none", "unlimited"):
        return None
    kind = "a positive whole number" if whole else "a positive number"
    try:
        number = int(value) if whole else float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not allowed: use {kind}, or off for no limit") from None
    if not 0 < number < float("inf"):
        raise ConfigError(f"{name}={value!r} is not allowed: use {kind}, or off for no limit")
    return number


def parse_rate_limit(value: str, name: str) -> str:
    """``auto``, ``off``, or rates in the ``limits`` package's syntax (``120/minute``,
    ``10/second;300/hour``)."""
    if value.lower() in ("auto", "off"):
        return value.lower()
    from limits import parse_many

    try:
        rates = parse_many(value)
    except ValueError:
        rates = []
    if not rates or any(rate.amount < 1 for rate in rates):
        raise ConfigError(f"{name}={value!r} is not a rate: use e.g. 120/minute, or auto or off")
    return value


def parse_flag(value: str, name: str) -> bool:
    """``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off``, in any case."""
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0 (on or off), not {value!r}")


def parse_choice(value: str, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not allowed: use one of {', '.join(allowed)}")
    return value


def parse_auth(value: str, name: str) -> tuple[str, str] | None:
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ConfigError(f"{name} must look like user:password (both non-empty)")
    return user, password


def valid_account_name(name: str) -> bool:
    """Whether ``name`` may name an account (see :data:`ACCOUNT_NAME`)."""
    return ACCOUNT_NAME.fullmatch(name) is not None


def parse_users(value: str, name: str) -> tuple[tuple[str, str], ...]:
    """``alice:pw,bob:pw`` -> ((alice, pw), (bob, pw)). A password may hold ``:`` but not ``,``.

    Messages name the entry by its position and never repeat a password (an entry without a
    colon might be a password typed without its name).
    """
    accounts: dict[str, str] = {}
    for number, entry in enumerate(value.split(",") if value else [], 1):
        entry = entry.strip()
        if not entry:
            continue  # a trailing comma
        user, sep, password = entry.partition(":")
        if not sep:
            raise ConfigError(f"{name}: entry {number} has no ':'; use name:password,name:password")
        if not valid_account_name(user):
            raise ConfigError(
                f"{name}: entry {number} has a bad name {user!r}: use letters, digits and ._@- (up to 64)"
            )
        if not password:
            raise ConfigError(f"{name}: entry {number} ({user}) has an empty password")
        if user in accounts:
            raise ConfigError(f"{name} names {user} twice: keep one entry per account")
        accounts[user] = password
    return tuple(accounts.items())
