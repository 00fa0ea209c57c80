"""Helpers every tab shares: error handling, temp copies of audio, formatting, queue settings.

Why these exist:

* **Errors.** Gradio shows a toast only for ``gr.Error`` raised in a queued event; anything else
  becomes a generic "Error" (or, with ``show_error=True``, a leaked message). :func:`guarded`
  turns :class:`~voicebox.errors.VoiceboxError` into a toast carrying its (escaped) message and
  any other exception into one generic sentence, logging the traceback on the server only.
* **Files.** Whatever a handler returns as a file is served to anyone logged in who holds the URL,
  and the data directory is never in ``allowed_paths`` (it is in ``blocked_paths``).
  :class:`TempAudio` hands out copies from a private (0700) temp folder instead, prunes them, and
  records whom each was made for, so :mod:`voicebox.ui.files` refuses it to anyone else.
* **Whose data.** Every handler reads and changes the data of :meth:`UIContext.owner`: the
  visitor's (:mod:`voicebox.identity`: a login, a Hugging Face account, an anonymous browser),
  or the local user's on a private server.
* **Queue.** Every model call shares one concurrency group so the UI never runs two model jobs
  at once; light reads of the store run in parallel.
"""

from __future__ import annotations

import atexit
import functools
import html
import inspect
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, TypeVar

import gradio as gr

from ..audio import check_upload_size
from ..identity import Visitor, visitor_of_request
from ..config import Settings
from ..errors import InvalidInput, VoiceboxError
from .files import ServedFiles

log = logging.getLogger("voicebox.ui")

F = TypeVar("F", bound=Callable[..., Any])

#: Shown for any failure that is not a :class:`VoiceboxError`; details go to the server log.
GENERIC_ERROR = "Something went wrong on the server. The details are in the server log; please try again."

#: Every model call (TTS, Whisper, load/unload) queues here, one at a time.
MODEL_QUEUE: dict[str, Any] = {"concurrency_id": "model", "concurrency_limit": 1}
#: Store reads and small edits: a few may run at once.
LIGHT_QUEUE: dict[str, Any] = {"concurrency_limit": 4}
#: Opening and deleting a take run one at a time, in the order they were asked for: otherwise a
#: slow "open" can finish after a quick "delete" and show the take that was just deleted.
SELECTION_QUEUE: dict[str, Any] = {"concurrency_limit": 1, "concurrency_id": "history-selection"}


def ui_event(name: str) -> dict[str, Any]:
    """Event options for a UI-only event: a reserved, prefixed name that clients cannot call.

    Explicit names matter: Gradio names an event after its function, and a private event still
    takes its name, which would push a public endpoint such as ``/generate`` to ``/generate_1``.
    """
    return {"api_name": f"ui_{name}", "api_visibility": "private"}


# ---- errors -----------------------------------------------------------------------------------
def escape(text: Any) -> str:
    """HTML-escape text for toasts (Gradio renders toast messages as HTML)."""
    return html.escape(str(text), quote=False)


def user_message(exc: BaseException) -> str:
    """What a person reads for an exception, as plain text without server paths: the message of
    a user error (:class:`VoiceboxError`, or a ``gr.Error`` a handler built), else
    :data:`GENERIC_ERROR`, with the traceback logged on the server only."""
    if isinstance(exc, gr.Error):
        return without_paths(str(exc.message))
    if isinstance(exc, VoiceboxError):
        return without_paths(exc.message)
    log.error("unexpected error in a UI handler", exc_info=exc)
    return GENERIC_ERROR


def to_gr_error(exc: BaseException) -> gr.Error:
    """The toast for an exception: its message for user errors, a generic line otherwise."""
    if isinstance(exc, gr.Error):
        return exc
    return gr.Error(escape(user_message(exc)), print_exception=False)


def handling(on_error: Callable[[Exception], Any]) -> Callable[[F], F]:
    """A decorator for handlers (functions or generators): an exception goes to ``on_error``,
    which raises what the user sees or returns what the handler returns (a generator yields it).

    The wrapper keeps the signature (``functools.wraps``), so Gradio still injects
    ``gr.Request`` / ``gr.Progress`` parameters and detects generators.
    """

    def decorate(fn: F) -> F:
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def generator_wrapper(*args: Any, **kwargs: Any) -> Any:
                try:
                    yield from fn(*args, **kwargs)
                except GeneratorExit:
                    raise
                except Exception as exc:
                    yield on_error(exc)

            return generator_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                return on_error(exc)

        return wrapper  # type: ignore[return-value]

    return decorate


def _raise_for_user(exc: Exception) -> Any:
    raise to_gr_error(exc) from None


#: Wrap a handler so no exception reaches the user raw: it becomes a ``gr.Error`` toast.
guarded = handling(_raise_for_user)


#: An absolute path under a usual filesystem root (API routes such as /v1/audio/speech are not).
_SERVER_PATH = re.compile(
    r"(?<![\w.:/])/(?:tmp|var|srv|home|root|opt|usr|data|mnt|media|work|app|etc|run|private|Users)"
    r"(?:/[\w.@+-]+)*/([\w.@+-]+)"
)


def without_paths(message: str) -> str:
    """The message with any absolute server path cut to its file name: a toast may quote an
    engine's or library's message, and where files live on the server is nobody's business."""
    return _SERVER_PATH.sub(r"\1", message)


def warn(exc: BaseException) -> str:
    """Show a refused or failed action as a toast that does not touch the form; returns the
    plain message (:func:`user_message`) for a status line that says the same."""
    message = user_message(exc)
    gr.Warning(message if isinstance(exc, gr.Error) else escape(message))  # a gr.Error is HTML already
    return message


def show_panel_on(ask: Any, keep: Any, panel: Any, name: str) -> None:
    """Wire an "ask first" panel: ``ask`` shows it, ``keep`` hides it again (no server state)."""
    ask.click(lambda: gr.update(visible=True), outputs=panel, **ui_event(f"{name}_ask_delete"), **LIGHT_QUEUE)
    keep.click(lambda: gr.update(visible=False), outputs=panel, **ui_event(f"{name}_keep"), **LIGHT_QUEUE)


def _skip_after_warning(exc: Exception) -> Any:
    warn(exc)
    return gr.skip()


#: Wrap a UI event handler so a refusal leaves the page exactly as it was, with a message.
#:
#: Why not :func:`guarded`: when a handler raises, Gradio puts a red "Error" badge on *every*
#: output of the event, which stays after the toast and blocks clicks until closed. A person who
#: typed a taken name must find the form as they left it. So here the message goes out as a
#: toast (:func:`warn`) and the handler returns one ``gr.skip()``, which Gradio applies to every
#: output. Handlers whose outputs must change on failure (e.g. clearing a stale transcript)
#: catch the error themselves. Endpoints for API clients keep :func:`guarded`: a client wants
#: the error.
refusing = handling(_skip_after_warning)


def check_upload(path: str | Path | None, settings: Settings) -> Path:
    """The uploaded file's path, refusing a missing or oversized file before anything reads it."""
    if not path:
        raise InvalidInput("Choose or record an audio file first.")
    file = Path(path)
    check_upload_size(file.stat().st_size if file.is_file() else 0, settings.max_upload_bytes)
    return file


# ---- temp copies ------------------------------------------------------------------------------
class TempAudio:
    """Private copies of audio for playback and download.

    One 0700 folder per process under the system temp dir (which Gradio may serve from). Each
    copy lives in its own random sub-folder, so the download keeps a friendly file name without
    two copies colliding. Copies older than ``max_age`` seconds are pruned as new ones are made;
    Gradio has its own copy by then. Each copy is recorded in :attr:`served` for the owner it is
    made for (:mod:`voicebox.ui.files`).
    """

    def __init__(self, root: Path | None = None, max_age: float = 3600.0) -> None:
        self.served = ServedFiles()
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="voicebox-ui-"))
            atexit.register(shutil.rmtree, root, True)  # our own folder: gone with the process
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        self.root = root
        self.max_age = max_age
        self._lock = threading.Lock()
        self._last_prune = 0.0

    def copy(self, source: Path, name: str | None = None, owner: str = "") -> str:
        """Copy ``source`` into a fresh private folder for ``owner``'s page; returns the copy's path."""
        target = self._new_dir() / safe_filename(name or source.name)
        shutil.copyfile(source, target)
        self.served.handed(target, owner)
        return str(target)

    def cached_copy(self, source: Path, key: str, name: str | None = None, owner: str = "") -> str:
        """A copy reused while it exists, for immutable files (samples, keyed by their hash: the
        same bytes for whoever has them)."""
        folder = self.root / f"k-{re.sub(r'[^0-9a-zA-Z]', '', key)[:40]}"
        target = folder / safe_filename(name or source.name)
        if not target.is_file():
            folder.mkdir(mode=0o700, exist_ok=True)
            partial = folder / f".{uuid.uuid4().hex}.part"
            shutil.copyfile(source, partial)
            os.replace(partial, target)
        else:
            os.utime(folder)
        self.served.handed(target, owner)
        return str(target)

    def write(self, data: bytes, name: str, owner: str = "") -> str:
        """Write ``data`` as a new private file for ``owner``'s page; returns its path."""
        target = self._new_dir() / safe_filename(name)
        target.write_bytes(data)
        self.served.handed(target, owner)
        return str(target)

    def _new_dir(self) -> Path:
        self.prune()
        folder = self.root / uuid.uuid4().hex
        folder.mkdir(mode=0o700)
        return folder

    def prune(self, force: bool = False) -> int:
        """Delete copies older than ``max_age`` (at most once a minute unless ``force``)."""
        now = time.time()
        with self._lock:
            if not force and now - self._last_prune < 60:
                return 0
            self._last_prune = now
        removed = 0
        for folder in self.root.iterdir():
            try:
                if now - folder.stat().st_mtime > self.max_age:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += 1
            except OSError:
                continue
        return removed

    def cleanup(self) -> None:
        """Remove the whole folder (tests; process exit)."""
        shutil.rmtree(self.root, ignore_errors=True)


def safe_filename(name: str) -> str:
    """A file name safe on every OS, keeping letters, digits, dot, dash and underscore."""
    stem = re.sub(r"[^\w.-]+", "-", name, flags=re.UNICODE).strip(".-") or "audio"
    return stem[:120]


# ---- formatting -------------------------------------------------------------------------------
def fmt_seconds(seconds: float | int | None) -> str:
    """``3.2 s``, ``1 min 05 s``, ``2 h 03 min``: durations people read at a glance."""
    value = float(seconds or 0.0)
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(round(value)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fmt_time(iso: str | None) -> str:
    """An ISO timestamp from the store, in the server's local time, to the minute."""
    if not iso:
        return ""
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def excerpt(text: str, limit: int = 60) -> str:
    """One line of at most ``limit`` characters."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def facts_html(rows: list[tuple[str, Any]]) -> str:
    """A grid of labelled values (take details, statistics, model status); values are escaped."""
    shown = [(label, "—" if value in (None, "") else value) for label, value in rows]
    cells = "".join(
        f'<div class="vb-fact"><span>{escape(label)}</span><strong>{escape(value)}</strong></div>'
        for label, value in shown
    )
    return f'<div class="vb-facts">{cells}</div>'


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~])")


def md(text: Any) -> str:
    """Escape user text (names, descriptions) for a Markdown component."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def language_label(value: str | None) -> str:
    """A profile's stored language (``auto`` or a title-case name) as the dropdown shows it."""
    return "Auto" if not value or value.lower() == "auto" else value


# ---- shared context ---------------------------------------------------------------------------
@dataclass
class UIContext:
    """What every tab needs: the one service object, settings and the temp-copy folder."""

    studio: Any
    settings: Settings
    temp: TempAudio = field(default_factory=TempAudio)
    #: The app, once built (its queue tells the Generate tab how many jobs are ahead).
    blocks: Any = None
    #: Anonymous libraries' visits and expiry (:mod:`voicebox.anonymous`), in that mode only.
    anonymous: Any = None

    def languages(self) -> list[str]:
        """Language choices, ``Auto`` first (from the loaded model when there is one)."""
        try:
            return self.studio.languages()
        except Exception:  # a broken engine must not break page rendering
            log.exception("could not list languages")
            return ["Auto"]

    def sizes(self) -> list[str]:
        """Configured TTS model sizes, e.g. ``["0.6B", "1.7B"]``."""
        return self.studio.model_sizes()

    def visitor(self, request: Any = None) -> Visitor:
        """Who the current UI event comes from (:func:`voicebox.identity.visitor`): a login, a
        Hugging Face account, an anonymous browser, the local user, or nobody.

        ``request`` is the handler's ``gr.Request`` when it takes one; otherwise Gradio's own
        request of the event being run (``LocalContext.request``, set around every handler call
        and every step of a generator), which also reaches ``gr.render`` functions, whose
        signature Gradio does not inspect for ``gr.Request``. Outside an event (a test calling a
        handler directly) there is none: the local user (nobody on a public server). A visit of
        an anonymous browser keeps its library from expiring.
        """
        if request is None:
            from gradio.context import LocalContext

            request = LocalContext.request.get(None)
        found = visitor_of_request(self.settings, request)
        if found.kind == "anonymous" and self.anonymous is not None:
            self.anonymous.seen(found.owner)
        return found

    def owner(self, request: Any = None) -> str:
        """Whose data the current UI event reads and changes (:mod:`voicebox.owners`).

        Raises:
            voicebox.identity.SignInRequired: a public server does not know this visitor.
        """
        return self.visitor(request).require(self.settings)

    def profile_choices(self, owner: str | None = None) -> list[tuple[str, str]]:
        """``(name, id)`` pairs of the owner's profiles (default: :meth:`owner`) for pickers."""
        owner = self.owner() if owner is None else owner
        return [(p.name, p.id) for p in self.studio.list_profiles(owner=owner)["items"]]
