"""OpenAI-compatible text to speech: ``POST /v1/audio/speech``, plus its streaming machinery.

OpenAI's SDKs (and tools built on them) can point ``base_url`` at voicebox and speak with a
profile's voice. Choices worth knowing:

* **Any model name is accepted.** Clients send whatever the user typed; the known names keep
  their size (``tts-1-hd`` is 1.7B), any other uses the default size, and the
  ``X-Voicebox-Model`` header says which size spoke.
* **Streaming is a studio job** (:mod:`voicebox.jobs`): the take runs on a thread of its own,
  which takes and releases the model lock per chunk; this route reads its audio events and
  writes them out. A client that goes away cancels the job, so the model stops at its next frame.
* **``speed`` is a real time-stretch** (librosa's phase vocoder: tempo changes, pitch does not),
  applied to the finished take; resampling would turn voices into chipmunks. Streams refuse a
  speed other than 1.0, because stretching pieces separately would smear their joins.

Errors here take OpenAI's body shape (see :mod:`voicebox.api.errors`).
"""

from __future__ import annotations

import logging
import struct
import threading
from typing import TYPE_CHECKING, Any, AsyncIterator

import anyio
import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from .. import audio, take_effects
from ..effects import for_take
from ..errors import Cancelled, InvalidInput, NotFound
from ..jobs import Job, JobAudio, JobDone, JobFailed
from ..records import GenerationRequest, Profile
from .effect_schemas import chain_from
from .guards import request_owner
from .routes import caller
from .schemas import OpenAIErrorBody, SpeechRequest, error_responses

if TYPE_CHECKING:
    from ..services import Studio

log = logging.getLogger(__name__)

SAMPLE_RATE = audio.MODEL_SAMPLE_RATE
#: OpenAI model names -> Qwen3-TTS sizes ("hd" is the large model); sizes are accepted as is.
OPENAI_MODELS = {
    "tts-1": "0.6B",
    "gpt-4o-mini-tts": "0.6B",
    "tts-1-hd": "1.7B",
    "0.6b": "0.6B",
    "1.7b": "1.7B",
}
STREAM_FORMATS = ("wav", "pcm")
#: Response header naming the Qwen3-TTS size that spoke a ``/v1/audio/speech`` take.
MODEL_HEADER = "X-Voicebox-Model"


def openai_size(model: str) -> str | None:
    """The Qwen3-TTS size an OpenAI model name (or a size) stands for; ``None`` for any other name."""
    return OPENAI_MODELS.get((model or "").strip().lower())


def speech_size(studio: "Studio", model: str) -> str:
    """The size ``/v1/audio/speech`` uses for ``model``: its own, else the default that
    ``Studio.generate`` applies when no size is asked (the loaded model's, else the small one).

    Resolved here, not left to the studio, so the ``X-Voicebox-Model`` header of a stream (sent
    before the take is saved) names the size that really speaks.
    """
    return openai_size(model) or studio.default_size()


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


def stream_speech(studio: "Studio", request: GenerationRequest, fmt: str,
                  user: str | None = None, owner: str = "") -> Response:
    """Start a streamed take (for ``owner`` and ``user``, see ``Studio.start_generation``); errors
    before the first audio still get a JSON status."""
    if fmt not in STREAM_FORMATS:
        raise InvalidInput(
            f"Streaming supports response_format wav or pcm, not {fmt!r}; or set stream to false."
        )
    job = studio.start_generation(request, stream=True, owner=owner, user=user)
    first = next_audible(job)  # blocks this worker thread until the first audio (or an error)
    if isinstance(first, JobFailed):
        raise first.error

    async def body() -> AsyncIterator[bytes]:
        try:
            if fmt == "wav":
                yield wav_stream_header()
            event = first
            while isinstance(event, JobAudio):
                yield pcm16(event.samples)
                event = await anyio.to_thread.run_sync(next_audible, job, abandon_on_cancel=True)
            if isinstance(event, JobDone):
                log.info("streamed generation %s saved", event.generation.id)
            elif isinstance(event.error, Cancelled):
                log.info("streamed generation stopped: the client went away")
            else:
                log.error("streamed generation failed after audio was sent", exc_info=event.error)
        finally:
            job.cancel()

    media_type = "audio/wav" if fmt == "wav" else "audio/pcm"
    return CancellingStreamingResponse(
        body(), job.cancel_event, media_type=media_type,
        headers={"Cache-Control": "no-store", MODEL_HEADER: request.model_size or studio.default_size()},
    )


def next_audible(job: Job) -> JobAudio | JobDone | JobFailed:
    """The job's next audio, or its outcome; progress and chunk events are skipped here."""
    while True:
        event = job.next_event()
        if isinstance(event, (JobAudio, JobDone, JobFailed)):
            return event


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
            **error_responses(401, 404, 413, 422, 429, 500, 503, body=OpenAIErrorBody),
        },
        summary="OpenAI-compatible text to speech",
    )
    def speech(body: SpeechRequest, http: Request) -> Response:
        """Works with OpenAI's SDKs: point ``base_url`` at ``http://host:port/v1``. The take is
        also saved to the history (at speed 1.0). ``voice`` is looked up in the caller's own
        profiles only."""
        size = speech_size(studio, body.model)
        owner = request_owner(http)
        profile = find_voice(studio, body.voice, owner)
        request = GenerationRequest(profile_id=profile.id, text=body.input, model_size=size,
                                    effects=chain_from(body.effects), instruct=body.instructions)
        user = caller(studio, http)
        if body.stream:
            if body.speed != 1.0:
                raise InvalidInput(
                    "speed other than 1.0 is not supported when streaming; set stream to false."
                )
            if for_take(request.effects, profile.effects) is not None:
                raise InvalidInput("Effects apply to the finished take, so they cannot be streamed; set stream "
                                   "to false, or send \"effects\": \"none\" to stream the clean voice.")
            return stream_speech(studio, request, body.response_format, user, owner)
        record = studio.generate(request, owner=owner, user=user)
        if body.speed == 1.0:
            data, mime = take_effects.played_audio(studio, record, body.response_format)
        else:
            samples = audio.load_mono(take_effects.played_file(studio, record), SAMPLE_RATE)
            data, mime = audio.encode(time_stretch(samples, body.speed), SAMPLE_RATE, body.response_format)
        return Response(
            data, media_type=mime, headers={"X-Generation-Id": record.id, MODEL_HEADER: record.size}
        )


def find_voice(studio: Studio, voice: str, owner: str) -> Profile:
    """The caller's profile by name or id, else a built-in voice by name ("Vivian"); a name that
    is neither answers as a missing profile. A profile of the caller's own wins over a built-in
    voice of the same name."""
    try:
        return studio.find_profile(voice, owner=owner)
    except NotFound:
        built_in = studio.speakers.find(voice)
        if built_in is None:
            raise
        return built_in
