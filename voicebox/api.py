"""REST API: FastAPI routes over :class:`voicebox.services.Studio`, served beside the Gradio UI.

The API only translates HTTP to ``Studio`` calls and back, so the UI and the API share one store,
one model lock and one set of rules. Choices worth knowing:

* **Blocking work runs in the thread pool.** Model calls take seconds to minutes, so those
  endpoints are plain ``def`` functions (FastAPI runs them in its worker threads); the engines
  serialise model use with one lock, so parallel requests queue instead of colliding.
* **Errors are JSON, never a stack trace.** Every route is a :class:`VoiceboxRoute`, which turns
  a :class:`~voicebox.errors.VoiceboxError` into its ``status_code`` with ``{"detail": message}``,
  validation failures into a readable 422, and anything unexpected into a logged 500 whose body
  says only "Internal error; see the server log.". Doing this per route (not with app-wide
  handlers) keeps the router self-contained and leaves Gradio's own handling untouched. Under
  ``/v1/`` the same errors use OpenAI's body (``{"error": {"message", "type", "param",
  "code"}}``), because OpenAI's SDKs read the message from there and otherwise show only
  "Error code: 422".
* **Any OpenAI model name is accepted.** Clients send whatever the user typed; the known names
  keep their size (``tts-1-hd`` is 1.7B), any other uses the default size, and the
  ``X-Voicebox-Model`` header says which size spoke.
* **Credentials and size limits are checked before the body is read.** The route checks the
  ``Authorization`` header first (401), then ``Content-Length`` against the upload limit (413),
  and caps chunked bodies while they arrive, so an oversized or unauthenticated upload is never
  parsed, spooled to disk or decoded. ``Studio`` checks the file size again.
* **Ids are validated at the edge**: anything but 32 lowercase hex digits is a 404, so path
  tricks (``../``, absolute paths, encoded separators) never reach the file system.
* **The docs work offline.** ``/docs`` is Swagger UI served from the ``fastapi-offline``
  package (its JS, CSS and icon under ``/static-offline-docs``), not from a CDN, so the page
  renders on a machine without internet. With a login set, ``/docs`` and ``/openapi.json`` need
  it (:class:`DocsGuard`); the static assets stay public, as they hold no user data.
* **Streaming runs the generator on one thread.** ``Studio.generate_stream`` holds the model lock
  (a ``threading.RLock``) across its yields; an RLock must be released by the thread that took
  it, but Starlette would call ``next()`` from whichever worker is free. :class:`ThreadFeed`
  drives the generator on a dedicated thread and hands audio over a queue; a client that goes
  away sets the cancel event, so the model stops at the next chunk.
* **``speed`` is a real time-stretch** (librosa's phase vocoder: tempo changes, pitch does not),
  applied to the finished take; resampling would turn voices into chipmunks. Streams refuse a
  speed other than 1.0, because stretching pieces separately would smear their joins.
"""

from __future__ import annotations

import logging
import queue
import re
import struct
import threading
from typing import TYPE_CHECKING, Annotated, Any, AsyncIterator, Callable, Coroutine, Iterator, Literal

import anyio
import numpy as np
from fastapi import APIRouter, Depends, FastAPI, File, Form, Path, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBasic, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Scope, Send

from . import __version__, audio
from .auth import auth_required, challenge, check_credentials
from .config import Settings
from .engines.tts import SIZES
from .errors import Cancelled, InvalidInput, NotFound, VoiceboxError

if TYPE_CHECKING:
    from .services import Studio

log = logging.getLogger(__name__)

ID_RE = re.compile(r"[0-9a-f]{32}")
EXAMPLE_ID = "3f9c2a7be41d4c0f9a8e6b5d4c3b2a19"
#: Room for multipart boundaries and form fields on top of the audio upload limit.
UPLOAD_OVERHEAD = 64 * 1024
INTERNAL_ERROR = "Internal error; see the server log."
DOCS_URL = "/docs"
SAMPLE_RATE = audio.MODEL_SAMPLE_RATE
#: OpenAI model names -> Qwen3-TTS sizes ("hd" is the large model); sizes are accepted as is.
OPENAI_MODELS = {
    "tts-1": "0.6B",
    "gpt-4o-mini-tts": "0.6B",
    "tts-1-hd": "1.7B",
    "0.6b": "0.6B",
    "1.7b": "1.7B",
}
#: Error statuses -> OpenAI's short ``code`` in ``/v1/`` error bodies.
OPENAI_ERROR_CODES = {
    400: "bad_request",
    401: "invalid_api_key",
    404: "not_found",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_value",
    500: "internal_error",
    503: "model_unavailable",
}
STREAM_FORMATS = ("wav", "pcm")
#: Response header naming the Qwen3-TTS size that spoke a ``/v1/audio/speech`` take.
MODEL_HEADER = "X-Voicebox-Model"

AudioFormat = Literal["wav", "flac", "mp3", "ogg"]
SpeechFormat = Literal["wav", "flac", "mp3", "opus", "pcm"]
ModelSize = Literal["0.6B", "1.7B"]
ModelName = Literal["tts", "whisper"]

OPENAPI_TAGS = [
    {"name": "system", "description": "Health and version."},
    {"name": "profiles", "description": "Voice profiles: a name, a language and the samples of one voice."},
    {
        "name": "samples",
        "description": "Voice samples (5-30 s recordings); transcribed automatically if no text is given.",
    },
    {
        "name": "generate",
        "description": "Speak text in a profile's voice; every take is saved to the history.",
    },
    {"name": "history", "description": "Saved generations: search, statistics, deletion (audio included)."},
    {"name": "audio", "description": "Audio of saved generations, as WAV or converted."},
    {"name": "transcribe", "description": "Whisper speech-to-text for any clip."},
    {"name": "models", "description": "Load and unload the TTS and Whisper models."},
    {"name": "openai", "description": "OpenAI-compatible text-to-speech (`/v1/audio/speech`)."},
]

API_DESCRIPTION = """Voice cloning with Qwen3-TTS and Whisper transcription.

Errors are JSON: `{"detail": "what went wrong and what to do"}`; under `/v1/` they take OpenAI's
shape, `{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}`, so OpenAI's SDKs show
the message. When `VOICEBOX_AUTH` is set,
every route except `/health` needs HTTP Basic with that login, or `Authorization: Bearer
<VOICEBOX_API_TOKEN>`; without credentials `/health` answers only its status and version.
"""


# ---- schemas -----------------------------------------------------------------------------------
class Record(BaseModel):
    """A stored record: the documented fields, plus any others the store keeps."""

    model_config = ConfigDict(extra="allow")


class ErrorBody(BaseModel):
    """Every error response."""

    detail: str = Field(examples=["Profile '3f9c2a7be41d4c0f9a8e6b5d4c3b2a19' does not exist."])
    errors: list[dict[str, Any]] | None = Field(
        None, description="For validation errors only: each failing field's location and message."
    )


class OpenAIError(BaseModel):
    message: str = Field(examples=["No voice profile named or with id 'Nobody'."])
    type: str = Field(description="`invalid_request_error` (4xx) or `server_error` (5xx).")
    param: str | None = Field(None, description="The failing field of a validation error.")
    code: str | None = Field(None, examples=["not_found"])


class OpenAIErrorBody(BaseModel):
    """Every error response under `/v1/` (OpenAI's shape)."""

    error: OpenAIError


class Health(Record):
    status: str = Field(examples=["ok"])
    version: str = Field(examples=[__version__])
    auth_required: bool = False
    tts_loaded: bool | None = None
    tts_model: str | None = Field(None, examples=["Qwen/Qwen3-TTS-12Hz-0.6B-Base"])
    tts_size: str | None = Field(None, examples=["0.6B"])
    device: str | None = Field(None, examples=["cuda"])
    whisper_loaded: bool | None = None
    database_recovered: str | None = None


class ProfileCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "Narrator", "description": "Warm, slow", "language": "English"}]
        },
    )
    name: str = Field(description="1-100 characters, unique (case-insensitive).", examples=["Narrator"])
    description: str = Field("", examples=["Warm, slow audiobook voice"])
    language: str = Field("auto", description="`auto` or a language the model speaks.", examples=["English"])


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"description": "Calm and clear"}]}
    )
    name: str | None = None
    description: str | None = None
    language: str | None = None


class Profile(Record):
    id: str = Field(examples=[EXAMPLE_ID])
    name: str = Field(examples=["Narrator"])
    description: str = ""
    language: str = Field("auto", examples=["English"])
    created_at: str | None = None
    updated_at: str | None = None
    sample_count: int | None = None


class Sample(Record):
    id: str = Field(examples=[EXAMPLE_ID])
    profile_id: str
    reference_text: str = Field(description="What the sample says (typed or transcribed).")
    duration: float = Field(description="Seconds of speech kept after trimming silence.")
    sample_rate: int = 24000
    sha256: str
    warnings: list[str] = []
    created_at: str | None = None
    audio_url: str = Field(examples=[f"/profiles/samples/{EXAMPLE_ID}/audio"])


class ProfileDetail(Profile):
    samples: list[Sample] = []


class ProfileList(BaseModel):
    items: list[Profile]
    total: int = Field(description="Matches before `limit`/`offset` were applied.")


class SampleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reference_text: str = Field(
        examples=["And so, my fellow Americans, ask not what your country can do for you."]
    )


class GenerateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "profile_id": EXAMPLE_ID,
                    "text": "Hello! This is my cloned voice.",
                    "seed": 42,
                    "preset": "Stable",
                }
            ]
        },
    )
    profile_id: str = Field(examples=[EXAMPLE_ID])
    text: str = Field(
        description="1-5,000 characters; long text is split at sentences.", examples=["Hello there!"]
    )
    language: str | None = Field(None, description="Default: the profile's language (`auto` detects it).")
    model_size: ModelSize | None = Field(None, description="Default: the loaded size, else 0.6B.")
    seed: int | None = Field(None, description="0 to 2^31-1; random (and recorded) when omitted.")
    temperature: float | None = Field(None, description="0.05-2.0")
    top_k: int | None = Field(None, description="1-500")
    top_p: float | None = Field(None, description="0.05-1.0")
    repetition_penalty: float | None = Field(None, description="1.0-2.0")
    preset: str | None = Field(None, description="`Stable`, `Balanced` (default) or `Expressive`.")

    def options(self) -> dict[str, Any]:
        """The generation options that were given (``Studio.generate`` keywords)."""
        return self.model_dump(exclude={"profile_id", "text"}, exclude_none=True)


class Timings(Record):
    prompt: float = Field(description="Seconds to get the voice prompt (0 when cached).")
    generate: float = Field(description="Seconds in the talker and code predictor.")
    decode: float = Field(description="Seconds in the codec decoder.")
    total: float


class Generation(Record):
    id: str = Field(examples=[EXAMPLE_ID])
    profile_id: str
    profile_name: str = Field(examples=["Narrator"])
    text: str
    language: str = Field(examples=["English"])
    model: str = Field(examples=["Qwen/Qwen3-TTS-12Hz-0.6B-Base"])
    size: str = Field(examples=["0.6B"])
    mode: str = Field(description="`icl` (samples have transcripts) or `xvector`.", examples=["icl"])
    seed: int
    duration: float = Field(description="Seconds of audio.")
    cache_hit: bool = Field(description="The voice prompt came from the cache.")
    timings: Timings
    status: str = Field(
        description="`ok`, or `incomplete` when a chunk hit the length limit.", examples=["ok"]
    )
    message: str = ""
    params: dict[str, Any] = {}
    created_at: str | None = None
    audio_url: str = Field(examples=[f"/audio/{EXAMPLE_ID}"])


class GenerationList(BaseModel):
    items: list[Generation]
    total: int


class ProfileStats(Record):
    profile_id: str
    profile_name: str
    count: int
    seconds: float


class HistoryStats(Record):
    count: int
    total_seconds: float
    per_profile: list[ProfileStats]


class TranscriptSegment(Record):
    start: float
    end: float
    text: str


class Transcript(Record):
    text: str = Field(examples=["And so, my fellow Americans, ask not what your country can do for you."])
    language: str = Field(examples=["en"])
    duration: float = Field(examples=[11.0])
    segments: list[TranscriptSegment] = []


class ModelLoad(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"model": "tts", "size": "0.6B"}]}
    )
    model: ModelName
    size: ModelSize | None = Field(None, description="TTS only.")


class ModelUnload(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"model": "whisper"}]})
    model: ModelName


class ModelsStatus(Record):
    tts: dict[str, Any]
    whisper: dict[str, Any]
    prompt_cache: dict[str, Any] = {}


class SpeechRequest(BaseModel):
    """OpenAI's ``audio.speech.create`` body; unknown fields (e.g. ``instructions``) are ignored."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "model": "tts-1",
                    "input": "Hello from voicebox.",
                    "voice": "Narrator",
                    "response_format": "wav",
                }
            ]
        },
    )
    model: str = Field(
        "tts-1",
        description="`tts-1`/`gpt-4o-mini-tts` (0.6B), `tts-1-hd` (1.7B), or `0.6B`/`1.7B`; any other "
        "name uses the default size (the loaded model's, else 0.6B). `X-Voicebox-Model` names the size used.",
    )
    input: str = Field(description="The text to speak (1-5,000 characters).")
    voice: str = Field(description="A profile name (case-insensitive) or id.", examples=["Narrator"])
    response_format: SpeechFormat = Field(
        "mp3", description="`pcm` is raw 16-bit little-endian mono at 24 kHz."
    )
    speed: float = Field(
        1.0, ge=0.25, le=4.0, description="Tempo (pitch kept), applied with a phase vocoder."
    )
    stream: bool = Field(
        False, description="voicebox extension: send audio as it is made (`wav` or `pcm`, speed 1)."
    )


# ---- helpers -------------------------------------------------------------------------------------
ProfileId = Annotated[str, Path(description="Profile id (32 lowercase hex digits).", examples=[EXAMPLE_ID])]
SampleId = Annotated[str, Path(description="Sample id (32 lowercase hex digits).", examples=[EXAMPLE_ID])]
GenerationId = Annotated[
    str, Path(description="Generation id (32 lowercase hex digits).", examples=[EXAMPLE_ID])
]


def check_id(value: str, what: str) -> str:
    """Refuse anything that is not one of our ids before it reaches the store or a path."""
    if not ID_RE.fullmatch(value or ""):
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise NotFound(f"{what} {shown!r} does not exist.")
    return value


def sample_out(record: dict[str, Any]) -> dict[str, Any]:
    """A sample as the API shows it: the internal file path replaced by its URL."""
    out = {k: v for k, v in record.items() if k != "file"}
    out["audio_url"] = f"/profiles/samples/{record['id']}/audio"
    return out


def generation_out(record: dict[str, Any]) -> dict[str, Any]:
    """A generation as the API shows it: the internal file path replaced by ``audio_url``."""
    out = {k: v for k, v in record.items() if k != "file"}
    out["audio_url"] = f"/audio/{record['id']}"
    return out


def openai_size(model: str) -> str | None:
    """The Qwen3-TTS size an OpenAI model name (or a size) stands for; ``None`` for any other name."""
    return OPENAI_MODELS.get((model or "").strip().lower())


def speech_size(studio: "Studio", model: str) -> str:
    """The size ``/v1/audio/speech`` uses for ``model``: its own, else the default that
    ``Studio.generate`` applies when no size is asked (the loaded model's, else the small one).

    Resolved here, not left to the studio, so the ``X-Voicebox-Model`` header of a stream (sent
    before the take is saved) names the size that really speaks.
    """
    return openai_size(model) or studio.tts.loaded_size or SIZES[0]


def time_stretch(samples: np.ndarray, speed: float) -> np.ndarray:
    """Change tempo by ``speed`` keeping the pitch (librosa's phase vocoder)."""
    if speed == 1.0:
        return samples
    import librosa

    return librosa.effects.time_stretch(np.asarray(samples, dtype=np.float32), rate=speed).astype(np.float32)


def wav_stream_header(rate: int = SAMPLE_RATE) -> bytes:
    """A PCM16 mono WAV header whose sizes say "unknown" (0xFFFFFFFF), for a stream of frames."""
    unknown = 0xFFFFFFFF
    fields = (b"RIFF", unknown, b"WAVE", b"fmt ", 16, 1, 1, rate, rate * 2, 2, 16, b"data", unknown)
    return struct.pack("<4sI4s4sIHHIIHH4sI", *fields)


def pcm16(samples: np.ndarray) -> bytes:
    """Float audio -> raw little-endian 16-bit PCM."""
    return audio.encode(samples, SAMPLE_RATE, "pcm")[0]


def read_upload(file: UploadFile) -> bytes:
    """The uploaded bytes (the route already capped the body; ``Studio`` checks the size again)."""
    return file.file.read()


def is_openai_path(path: str) -> bool:
    """Whether ``path`` is an OpenAI-compatible route, whose errors take OpenAI's shape."""
    return path == "/v1" or path.startswith("/v1/")


def error_json(
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    path: str = "",
    param: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    """The error body for a request to ``path``: ``{"detail": ...}`` (plus ``errors`` for
    validation), or under ``/v1/`` OpenAI's ``{"error": {message, type, param, code}}``."""
    if is_openai_path(path):
        kind = "server_error" if status >= 500 else "invalid_request_error"
        error = {"message": detail, "type": kind, "param": param, "code": OPENAI_ERROR_CODES.get(status)}
        return JSONResponse({"error": error}, status_code=status, headers=headers)
    body: dict[str, Any] = {"detail": detail}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


def validation_response(exc: RequestValidationError, path: str = "") -> JSONResponse:
    """422 with one readable sentence plus the failing fields (never the submitted values)."""
    errors = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        where = ".".join(loc[1:] if len(loc) > 1 and loc[0] == "body" else loc) or "request"
        msg, kind = str(error.get("msg", "invalid")), str(error.get("type", ""))
        errors.append({"loc": loc, "field": where, "msg": msg, "type": kind})
    message = "; ".join(f"{e['field']}: {e['msg']}" for e in errors) or "The request is not valid."
    # OpenAI's ``param`` names a field; unparsable JSON (located by character offset) has none
    fields = [e["field"] for e in errors if len(e["loc"]) > 1 and e["type"] != "json_invalid"]
    return error_json(
        422, f"Invalid request: {message}", path=path, param=fields[0] if fields else None, errors=errors
    )


def error_response(exc: Exception, request: Request) -> Response:
    """Map any exception from a route to a JSON response; unexpected ones are logged, not shown."""
    path = request.url.path
    if isinstance(exc, VoiceboxError):
        log.info("%s %s -> %s: %s", request.method, path, exc.status_code, exc.message)
        return error_json(exc.status_code, exc.message, path=path)
    if isinstance(exc, RequestValidationError):
        return validation_response(exc, path)
    if isinstance(exc, HTTPException):
        return error_json(exc.status_code, str(exc.detail), dict(exc.headers or {}) or None, path=path)
    log.exception("internal error in %s %s", request.method, path)
    return error_json(500, INTERNAL_ERROR, path=path)


def declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not value.strip().isdigit():
        raise HTTPException(400, "The Content-Length header is not a number.")
    return int(value)


def too_large(max_upload_bytes: int) -> HTTPException:
    """413 naming the configured upload limit (the body may carry a little form overhead on top)."""
    return HTTPException(
        413,
        f"The upload is over the {max_upload_bytes / 1048576:.3g} MB limit (VOICEBOX_MAX_UPLOAD_MB); "
        "upload a shorter clip (a voice sample needs only 5-30 seconds).",
    )


def capped_receive(receive: Receive, limit: int, max_upload_bytes: int) -> Receive:
    """``receive`` that fails with 413 once more than ``limit`` body bytes have arrived."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise too_large(max_upload_bytes)
        return message

    return wrapped


def route_class(settings: Settings, protected: bool) -> type[APIRoute]:
    """An ``APIRoute`` that checks credentials and size before the body, and maps errors to JSON."""
    body_limit = settings.max_upload_bytes + UPLOAD_OVERHEAD
    needs_login = protected and auth_required(settings)

    class VoiceboxRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                if needs_login and not check_credentials(settings, request.headers.get("authorization")):
                    return error_json(
                        401,
                        "Authentication required: use the VOICEBOX_AUTH login or the API token.",
                        challenge(settings),
                        path=request.url.path,
                    )
                try:
                    length = declared_length(request)
                    if length is not None and length > body_limit:
                        raise too_large(settings.max_upload_bytes)
                    receive = capped_receive(request.receive, body_limit, settings.max_upload_bytes)
                    return await handler(Request(request.scope, receive))
                except Exception as exc:  # noqa: BLE001 - every error becomes JSON here
                    return error_response(exc, request)

            return guarded

    return VoiceboxRoute


class _DocumentedBasic(HTTPBasic):
    """HTTP Basic in the OpenAPI schema (the /docs "Authorize" button); checking is done elsewhere."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


class _DocumentedBearer(HTTPBearer):
    """Bearer token in the OpenAPI schema; checking is done elsewhere."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


def credentials_dependency(settings: Settings) -> Callable[..., None]:
    """A dependency that documents the security schemes and re-checks the credentials.

    The route class already refused bad credentials before the body was read; this check keeps
    routes safe if they are ever mounted without that class.
    """

    def require_credentials(
        request: Request,
        _basic: None = Depends(_DocumentedBasic(auto_error=False, realm="voicebox")),
        _bearer: None = Depends(_DocumentedBearer(auto_error=False)),
    ) -> None:
        if not check_credentials(settings, request.headers.get("authorization")):
            raise HTTPException(401, "Authentication required.", headers=challenge(settings))

    return require_credentials


# ---- streaming -----------------------------------------------------------------------------------
class ThreadFeed:
    """Run an iterator to the end on one dedicated thread; hand its items over a queue.

    Why: the iterator may hold a ``threading.RLock`` across ``yield`` (the model lock), which only
    the thread that took it may release. ``get`` returns ``("item", x)``, ``("error", exc)`` or
    ``("end", None)`` and may be called from any thread.
    """

    def __init__(self, iterator: Iterator[Any], name: str = "voicebox-stream") -> None:
        self._iterator = iterator
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._iterator:
                self._queue.put(("item", item))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._queue.put(("error", exc))
        else:
            self._queue.put(("end", None))

    def get(self) -> tuple[str, Any]:
        return self._queue.get()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


class CancellingStreamingResponse(StreamingResponse):
    """A streaming response that sets ``cancel`` when it ends for any reason (done or client gone)."""

    def __init__(self, content: AsyncIterator[bytes], cancel: threading.Event, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._cancel = cancel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._cancel.set()


def stream_speech(studio: "Studio", profile_id: str, text: str, size: str, fmt: str) -> Response:
    """Start a streamed generation; errors before the first audio still get a JSON status."""
    if fmt not in STREAM_FORMATS:
        raise InvalidInput(
            f"Streaming supports response_format wav or pcm, not {fmt!r}; or set stream to false."
        )
    cancel = threading.Event()
    feed = ThreadFeed(studio.generate_stream(profile_id, text, model_size=size, cancel=cancel))
    kind, first = feed.get()  # blocks this worker thread until the first audio (or an error)
    if kind == "error":
        raise first

    async def body() -> AsyncIterator[bytes]:
        try:
            if fmt == "wav":
                yield wav_stream_header()
            item_kind, item = kind, first
            while item_kind == "item":
                if len(item.audio):
                    yield pcm16(item.audio)
                if item.record is not None:
                    log.info("streamed generation %s saved", item.record["id"])
                item_kind, item = await anyio.to_thread.run_sync(feed.get, abandon_on_cancel=True)
            if item_kind == "error" and isinstance(item, Cancelled):
                log.info("streamed generation stopped: the client went away")
            elif item_kind == "error":
                log.error("streamed generation failed after audio was sent", exc_info=item)
        finally:
            cancel.set()

    media_type = "audio/wav" if fmt == "wav" else "audio/pcm"
    return CancellingStreamingResponse(
        body(), cancel, media_type=media_type, headers={"Cache-Control": "no-store", MODEL_HEADER: size}
    )


# ---- routes --------------------------------------------------------------------------------------
def _responses(*codes: int, body: type[BaseModel] = ErrorBody) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer with."""
    return {code: {"model": body} for code in codes}


def add_system_routes(router: APIRouter, studio: "Studio", settings: Settings) -> None:
    @router.get(
        "/health",
        response_model=Health,
        response_model_exclude_unset=True,
        tags=["system"],
        summary="Status, version and loaded models",
    )
    def health(request: Request) -> dict[str, Any]:
        """Open even when a login is set (for load balancers), but then, without credentials,
        it answers only ``status``, ``version`` and ``auth_required``."""
        info = studio.health()
        required = auth_required(settings)
        if required and not check_credentials(settings, request.headers.get("authorization")):
            return {"status": info["status"], "version": info["version"], "auth_required": True}
        return {**info, "auth_required": required}


def add_profile_routes(router: APIRouter, studio: "Studio") -> None:
    @router.post(
        "/profiles",
        status_code=201,
        response_model=Profile,
        tags=["profiles"],
        responses=_responses(409, 422),
        summary="Create a voice profile",
    )
    def create_profile(body: ProfileCreate) -> dict[str, Any]:
        return studio.create_profile(body.name, body.description, body.language)

    @router.get(
        "/profiles", response_model=ProfileList, tags=["profiles"], summary="List and search profiles"
    )
    def list_profiles(
        search: Annotated[str | None, Query(description="Part of the name or description.")] = None,
        limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        return studio.list_profiles(search, limit, offset)

    @router.get(
        "/profiles/{profile_id}",
        response_model=ProfileDetail,
        tags=["profiles"],
        responses=_responses(404),
        summary="A profile with its samples",
    )
    def get_profile(profile_id: ProfileId) -> dict[str, Any]:
        profile = studio.get_profile(check_id(profile_id, "Profile"))
        profile["samples"] = [sample_out(s) for s in profile.get("samples", [])]
        return profile

    @router.put(
        "/profiles/{profile_id}",
        response_model=Profile,
        tags=["profiles"],
        responses=_responses(404, 409, 422),
        summary="Change a profile (only the fields given)",
    )
    def update_profile(profile_id: ProfileId, body: ProfileUpdate) -> dict[str, Any]:
        return studio.update_profile(check_id(profile_id, "Profile"), **body.model_dump(exclude_unset=True))

    @router.delete(
        "/profiles/{profile_id}",
        status_code=204,
        response_class=Response,
        tags=["profiles"],
        responses=_responses(404),
        summary="Delete a profile and its samples (history stays)",
    )
    def delete_profile(profile_id: ProfileId) -> Response:
        studio.delete_profile(check_id(profile_id, "Profile"))
        return Response(status_code=204)


def add_sample_routes(router: APIRouter, studio: "Studio") -> None:
    @router.post(
        "/profiles/{profile_id}/samples",
        status_code=201,
        response_model=Sample,
        tags=["samples"],
        responses=_responses(404, 409, 413, 415, 422),
        summary="Upload a voice sample",
    )
    def add_sample(
        profile_id: ProfileId,
        file: Annotated[
            UploadFile, File(description="WAV, FLAC, MP3, OGG/Opus, M4A/AAC or WebM; 1-30 s of speech.")
        ],
        reference_text: Annotated[
            str | None, Form(description="What the sample says; omit it to transcribe with Whisper.")
        ] = None,
    ) -> dict[str, Any]:
        check_id(profile_id, "Profile")
        return sample_out(studio.add_sample(profile_id, read_upload(file), reference_text))

    @router.get(
        "/profiles/{profile_id}/samples",
        response_model=list[Sample],
        tags=["samples"],
        responses=_responses(404),
        summary="A profile's samples",
    )
    def list_samples(profile_id: ProfileId) -> list[dict[str, Any]]:
        return [sample_out(s) for s in studio.list_samples(check_id(profile_id, "Profile"))]

    @router.put(
        "/profiles/samples/{sample_id}",
        response_model=Sample,
        tags=["samples"],
        responses=_responses(404),
        summary="Correct a sample's reference text",
    )
    def update_sample(sample_id: SampleId, body: SampleUpdate) -> dict[str, Any]:
        return sample_out(studio.update_sample_text(check_id(sample_id, "Sample"), body.reference_text))

    @router.delete(
        "/profiles/samples/{sample_id}",
        status_code=204,
        response_class=Response,
        tags=["samples"],
        responses=_responses(404),
        summary="Delete a sample and its audio",
    )
    def delete_sample(sample_id: SampleId) -> Response:
        studio.delete_sample(check_id(sample_id, "Sample"))
        return Response(status_code=204)

    @router.get(
        "/profiles/samples/{sample_id}/audio",
        response_class=FileResponse,
        tags=["samples"],
        responses={200: {"content": {"audio/wav": {}}}, **_responses(404)},
        summary="A sample's cleaned audio",
    )
    def sample_audio(sample_id: SampleId) -> FileResponse:
        path = studio.sample_path(check_id(sample_id, "Sample"))
        return FileResponse(
            path, media_type="audio/wav", filename=f"{sample_id}.wav", content_disposition_type="inline"
        )


def add_generation_routes(router: APIRouter, studio: "Studio") -> None:
    @router.post(
        "/generate",
        status_code=201,
        response_model=Generation,
        tags=["generate"],
        responses=_responses(404, 422, 503),
        summary="Speak text in a profile's voice",
    )
    def generate(body: GenerateRequest) -> dict[str, Any]:
        """Blocks until the audio is saved; the record's ``audio_url`` serves it."""
        return generation_out(studio.generate(body.profile_id, body.text, **body.options()))

    @router.get(
        "/history", response_model=GenerationList, tags=["history"], summary="Saved generations, newest first"
    )
    def list_history(
        search: Annotated[str | None, Query(description="Part of the text or profile name.")] = None,
        profile_id: Annotated[str | None, Query(description="Only this profile's generations.")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        page = studio.list_history(search, profile_id, limit, offset)
        return {"items": [generation_out(r) for r in page["items"]], "total": page["total"]}

    @router.get("/history/stats", response_model=HistoryStats, tags=["history"], summary="Counts and seconds")
    def history_stats() -> dict[str, Any]:
        return studio.history_stats()

    @router.get(
        "/history/{generation_id}",
        response_model=Generation,
        tags=["history"],
        responses=_responses(404),
        summary="One generation",
    )
    def get_generation(generation_id: GenerationId) -> dict[str, Any]:
        return generation_out(studio.get_generation(check_id(generation_id, "Generation")))

    @router.delete(
        "/history/{generation_id}",
        status_code=204,
        response_class=Response,
        tags=["history"],
        responses=_responses(404),
        summary="Delete a generation and its audio",
    )
    def delete_generation(generation_id: GenerationId) -> Response:
        studio.delete_generation(check_id(generation_id, "Generation"))
        return Response(status_code=204)

    @router.get(
        "/audio/{generation_id}",
        response_class=Response,
        tags=["audio"],
        summary="A generation's audio",
        responses={
            200: {"content": {m: {} for m in ("audio/wav", "audio/flac", "audio/mpeg", "audio/ogg")}},
            **_responses(404, 422),
        },
    )
    def generation_audio(
        generation_id: GenerationId,
        fmt: Annotated[
            AudioFormat, Query(alias="format", description="Stored as WAV; others are converted.")
        ] = "wav",
    ) -> Response:
        check_id(generation_id, "Generation")
        if fmt == "wav":  # served from disk, with HTTP range support for seeking players
            return FileResponse(
                studio.generation_path(generation_id),
                media_type="audio/wav",
                filename=f"{generation_id}.wav",
                content_disposition_type="inline",
            )
        data, mime = studio.generation_audio(generation_id, fmt)
        return Response(
            data,
            media_type=mime,
            headers={"Content-Disposition": f'inline; filename="{generation_id}.{fmt}"'},
        )


def add_tool_routes(router: APIRouter, studio: "Studio") -> None:
    @router.post(
        "/transcribe",
        response_model=Transcript,
        tags=["transcribe"],
        responses=_responses(413, 415, 422, 503),
        summary="Speech to text (Whisper)",
    )
    def transcribe(
        file: Annotated[UploadFile, File(description="Any supported audio format, any length.")],
        language: Annotated[
            str | None, Form(description="Language hint, e.g. `en` or `English`; omit to detect.")
        ] = None,
    ) -> dict[str, Any]:
        return studio.transcribe(read_upload(file), language)

    @router.get("/models", response_model=ModelsStatus, tags=["models"], summary="What is loaded, where")
    def models() -> dict[str, Any]:
        return studio.model_status()

    @router.post(
        "/models/load",
        response_model=ModelsStatus,
        tags=["models"],
        responses=_responses(422, 503),
        summary="Load a model now (otherwise it loads on first use)",
    )
    def load_model(body: ModelLoad) -> dict[str, Any]:
        return studio.load_model(body.model, body.size)

    @router.post(
        "/models/unload", response_model=ModelsStatus, tags=["models"], summary="Free a model's memory"
    )
    def unload_model(body: ModelUnload) -> dict[str, Any]:
        return studio.unload_model(body.model)


def add_openai_routes(router: APIRouter, studio: "Studio") -> None:
    speech_types = ("audio/wav", "audio/flac", "audio/mpeg", "audio/ogg", "audio/pcm")

    @router.post(
        "/v1/audio/speech",
        response_class=Response,
        tags=["openai"],
        responses={
            200: {
                "content": {m: {} for m in speech_types},
                "description": "The audio; `X-Generation-Id` names the saved history record (not sent "
                "when streaming) and `X-Voicebox-Model` the model size that spoke.",
            },
            **_responses(401, 404, 413, 422, 500, 503, body=OpenAIErrorBody),
        },
        summary="OpenAI-compatible text to speech",
    )
    def speech(body: SpeechRequest) -> Response:
        """Works with OpenAI's SDKs: point ``base_url`` at ``http://host:port/v1``. The take is
        also saved to the history (at speed 1.0)."""
        size = speech_size(studio, body.model)
        profile = studio.find_profile(body.voice)
        if body.stream:
            if body.speed != 1.0:
                raise InvalidInput(
                    "speed other than 1.0 is not supported when streaming; set stream to false."
                )
            return stream_speech(studio, profile["id"], body.input, size, body.response_format)
        record = studio.generate(profile["id"], body.input, model_size=size)
        if body.speed == 1.0:
            data, mime = studio.generation_audio(record["id"], body.response_format)
        else:
            samples = audio.load_mono(studio.generation_path(record["id"]), SAMPLE_RATE)
            data, mime = audio.encode(time_stretch(samples, body.speed), SAMPLE_RATE, body.response_format)
        return Response(
            data, media_type=mime, headers={"X-Generation-Id": record["id"], MODEL_HEADER: record["size"]}
        )


# ---- assembly ------------------------------------------------------------------------------------
def build_api(studio: "Studio", settings: Settings | None = None) -> APIRouter:
    """All REST routes over ``studio``. Include the router *before* Gradio is mounted at ``/``."""
    settings = settings or studio.settings
    public = APIRouter(route_class=route_class(settings, protected=False))
    add_system_routes(public, studio, settings)
    protected = APIRouter(
        route_class=route_class(settings, protected=True),
        dependencies=[Depends(credentials_dependency(settings))] if auth_required(settings) else [],
        responses=_responses(401, 422, 500) if auth_required(settings) else _responses(422, 500),
    )
    add_profile_routes(protected, studio)
    add_sample_routes(protected, studio)
    add_generation_routes(protected, studio)
    add_tool_routes(protected, studio)
    add_openai_routes(protected, studio)
    router = APIRouter()
    router.include_router(public)
    router.include_router(protected)
    return router


class DocsGuard:
    """ASGI middleware: with a login configured, ``/docs`` and ``/openapi.json`` need it too."""

    def __init__(self, app: Any, settings: Settings, paths: frozenset[str]) -> None:
        self.app, self.settings, self.paths = app, settings, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths:
            headers = dict(scope.get("headers") or [])
            authorization = headers.get(b"authorization", b"").decode("latin-1")
            if not check_credentials(self.settings, authorization):
                response = error_json(401, "Authentication required.", challenge(self.settings))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_api(app: FastAPI, studio: "Studio", settings: Settings | None = None) -> None:
    """Add the REST API to ``app`` (before Gradio's mount), with its docs metadata and guard."""
    settings = settings or studio.settings
    app.include_router(build_api(studio, settings))
    app.description = API_DESCRIPTION
    known = {tag["name"] for tag in app.openapi_tags or []}
    app.openapi_tags = [*(app.openapi_tags or []), *(t for t in OPENAPI_TAGS if t["name"] not in known)]
    if auth_required(settings):
        # FastAPIOffline serves /docs itself and leaves app.docs_url unset, hence DOCS_URL too
        paths = {app.openapi_url, app.docs_url, DOCS_URL, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
        app.add_middleware(DocsGuard, settings=settings, paths=frozenset(p for p in paths if p))


def new_app() -> FastAPI:
    """An empty voicebox app whose ``/docs`` page loads Swagger UI from this server, not a CDN.

    ``FastAPIOffline`` registers the docs page and its static assets at once, so they come
    before anything added later (Gradio's mount at ``/`` would hide later routes).
    """
    return FastAPIOffline(title="voicebox", version=__version__, docs_url=DOCS_URL, redoc_url=None)


def create_api_app(studio: "Studio", settings: Settings | None = None) -> FastAPI:
    """The REST API alone (no UI): for tests and for serving the API without Gradio."""
    app = new_app()
    install_api(app, studio, settings)
    return app
