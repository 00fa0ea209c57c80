"""Getting model weights from the Hugging Face Hub without hanging an offline machine.

Both engines load weights named by a setting (``VOICEBOX_TTS_MODEL``, ``VOICEBOX_WHISPER_MODEL``
...) that may be a local directory or a Hub repository id. voicebox must start, and fail clearly,
on a machine without internet, so every engine resolves its setting the same way, here:

1. an existing local directory is used as is;
2. a value that looks like a path but is no directory is a typo: say which variable to fix;
3. the local Hugging Face cache is tried (``local_files_only=True``: no network at all);
4. only then the network, and only when ``HF_HUB_OFFLINE`` is not set: a TCP probe (seconds)
   and a metadata request (``model_info``, 10 s) come before the download, so a machine without
   internet or a repository that does not exist costs seconds, not minutes of retries.

Every failure is a :class:`~voicebox.errors.ModelUnavailable` naming the model, the reason and
the fix; those that mean "not on this machine and cannot be downloaded now" are
:class:`NotDownloaded`, so an engine can offer a bundled fallback for exactly those.

``huggingface_hub`` is imported on first use (its API pulls in httpx), and its two network calls
are wrapped in :func:`snapshot_download` and :func:`probe_repo` so tests can replace them here.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from voicebox.errors import ModelUnavailable

logger = logging.getLogger(__name__)

#: How long the TCP probe of the Hub may take before we call the machine offline.
HUB_PROBE_TIMEOUT_S = 3.0

#: How long the Hub may take to answer "does this repository exist" before we give up.
MODEL_INFO_TIMEOUT_S = 10


class NotDownloaded(ModelUnavailable):
    """The model is not on this machine and cannot be downloaded now (offline, unreachable Hub,
    unknown repository, failed download). Engines with a bundled fallback use it for these."""


def env_flag(name: str) -> bool:
    """Whether environment variable ``name`` is set to a true value (1/true/yes/on)."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def hub_offline() -> bool:
    """True when the user told huggingface_hub to stay offline (``HF_HUB_OFFLINE``).

    The environment is read at call time (huggingface_hub reads it once at import), so setting
    ``HF_HUB_OFFLINE`` later, as tests do, still takes effect; huggingface_hub's own constant is
    consulted too, for a process started offline.
    """
    if env_flag("HF_HUB_OFFLINE"):
        return True
    try:
        from huggingface_hub import constants

        return bool(getattr(constants, "HF_HUB_OFFLINE", False))
    except Exception:  # pragma: no cover - huggingface_hub ships with both engines
        return False


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """A cheap TCP probe of the Hub (``HF_ENDPOINT``), so an offline machine fails in seconds.

    Behind a proxy a direct connection may be refused even though downloads work, so with a
    proxy configured the probe is skipped and huggingface_hub's own timeouts bound the attempt.
    """
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme != "http" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def looks_like_path(value: str) -> bool:
    """Whether a model setting is meant as a filesystem path rather than a Hub id.

    Hub ids are ``name`` or ``owner/name``; anything starting with ``/``, ``.`` or ``~``, with
    more than one ``/``, or with the platform's own separator (Windows) is a path.
    """
    return value.startswith(("/", ".", "~")) or value.count("/") > 1 or os.sep != "/" and os.sep in value


def snapshot_download(repo_id: str, **kwargs: Any) -> str:
    """``huggingface_hub.snapshot_download``, imported on first use; the local snapshot folder."""
    from huggingface_hub import snapshot_download as download

    return download(repo_id, **kwargs)


def probe_repo(repo_id: str, timeout: float = MODEL_INFO_TIMEOUT_S) -> None:
    """Ask the Hub whether ``repo_id`` exists and may be read; raises what huggingface_hub raises
    (``RepositoryNotFoundError``, ``GatedRepoError``, connection errors)."""
    from huggingface_hub import HfApi

    HfApi().model_info(repo_id, timeout=timeout)


def resolve_snapshot(
    source: str,
    variable: str,
    what: str,
    fix: str | None = None,
    *,
    path_fix: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    allow_patterns: Sequence[str] | None = None,
) -> str:
    """A local directory holding the model ``source``, downloading it only when that can work.

    Args:
        source: the setting's value: a local directory or a Hugging Face repository id.
        variable: the environment variable that set it, named in messages (``VOICEBOX_TTS_MODEL``).
        what: what the model is, for messages (``"TTS model"`` gives "The TTS model 'x' ...").
        fix: what the user can do when it cannot be downloaded; default: run once with internet
            access, or set ``variable`` to a local directory.
        path_fix: the sentence after "``variable``='x' is not a directory." for a mistyped path;
            default: point it at a downloaded folder or a Hub id.
        cache_dir: Hugging Face cache to use (default: the standard one, shared with other tools).
        allow_patterns: download only these files of the repository (default: all).

    Returns:
        The directory: ``source`` itself (``~`` expanded) or the snapshot in the HF cache.

    Raises:
        ModelUnavailable: ``source`` looks like a path but is not a directory.
        NotDownloaded: not in the local cache and HF_HUB_OFFLINE is set, the Hub cannot be
            reached, the repository cannot be read, or the download failed.
    """
    expanded = os.path.expanduser(source)
    if os.path.isdir(expanded):
        return expanded
    if looks_like_path(source):
        hint = path_fix or f"Point it at a downloaded {what} folder, or at a Hugging Face model id."
        raise ModelUnavailable(f"{variable}={source!r} is not a directory. {hint}")

    options: dict[str, Any] = {}
    if cache_dir is not None:
        options["cache_dir"] = str(cache_dir)
    if allow_patterns is not None:
        options["allow_patterns"] = list(allow_patterns)
    try:
        return snapshot_download(source, local_files_only=True, **options)
    except Exception as exc:
        logger.info("%s %r is not in the local Hugging Face cache: %s", what, source, exc)

    fix = fix or f"run once with internet access to download it, or set {variable} to a local directory"
    if hub_offline():
        raise NotDownloaded(f"The {what} {source!r} is not downloaded and HF_HUB_OFFLINE is set: {fix}.")
    if not hub_reachable():
        raise NotDownloaded(
            f"The {what} {source!r} cannot be downloaded (the Hugging Face Hub cannot be reached): {fix}."
        )
    try:
        probe_repo(source)
    except Exception as exc:
        raise NotDownloaded(f"The {what} {source!r} cannot be downloaded ({type(exc).__name__}): {fix}.") from None
    logger.info("downloading the %s %r", what, source)
    try:
        return snapshot_download(source, **options)
    except Exception as exc:
        raise NotDownloaded(f"Downloading the {what} {source!r} failed ({exc}): {fix}.") from None
