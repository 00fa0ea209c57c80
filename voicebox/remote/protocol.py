"""The wire format of vLLM-Omni's speech API, as voicebox's remote backend uses it.

Written against **vllm-omni==0.30.0** (PyPI; ``vllm_omni/entrypoints/openai/protocol/audio.py``,
``serving_speech.py``, ``api_server.py``, ``tts_adapters/qwen3_tts.py``) and its documentation
``docs/serving/speech_api.md`` at vllm-project/vllm-omni commit
``078de2d14c2fcc670c1e0dd492e1b84a69c69d15``. ``docs/remote-protocol.md`` summarises the facts
relied on; the ones that shape this module:

* the sampling options are not top-level fields: ``extra_params`` carries ``temperature``,
  ``top_k`` and ``top_p`` onto the talker's sampling parameters (``repetition_penalty`` and
  ``min_tokens`` come from the server's deploy config; ``min_tokens: 2`` there is required);
* ``stream: true`` with an explicit ``stream_format: "sse"`` gives ``speech.audio.delta`` /
  ``done`` / ``error`` events; raw ``stream_format: "audio"`` and whole bodies are parsed too;
* a Base request that reaches its ``max_new_tokens`` without the end token is *refused*
  (HTTP 500, or ``speech.audio.error`` after the partial audio): :func:`is_codec_limit` spots it,
  so the backend can keep the partial audio and flag the chunk as the local engines do.

Pure functions and small typed values, no networking: the tests check them against the
documented examples.
"""

from __future__ import annotations

import base64
import io
import json
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..audio import MODEL_SAMPLE_RATE, resample
from ..engines.params import GenerationParams

#: The model's own rate; voicebox asks for it explicitly so no one resamples.
SAMPLE_RATE = MODEL_SAMPLE_RATE
#: Codec frames per second (Qwen3-TTS 12 Hz models): samples per frame = rate / 12.5.
FRAME_RATE = 12.5
#: The server's bounds on ``max_new_tokens`` (``_TTS_MAX_NEW_TOKENS_MIN/MAX``).
MAX_NEW_TOKENS_RANGE = (1, 4096)
#: What the server says when a Base take reached its cap without the codec's end token.
_CODEC_LIMIT = re.compile(r"did not emit codec EOS", re.IGNORECASE)


@dataclass(frozen=True)
class VoiceRef:
    """How the voice travels with a request: a registered ``name``, or the reference inline
    (``wav`` bytes and its transcript ``text``; no transcript: speaker embedding only)."""

    name: str | None = None
    wav: bytes | None = None
    text: str = ""

    def __post_init__(self) -> None:
        if (self.name is None) == (self.wav is None):
            raise ValueError("a VoiceRef is either a registered name or inline audio")


@dataclass(frozen=True)
class ChunkRequest:
    """One sentence chunk for ``POST /v1/audio/speech``."""

    text: str
    language: str
    voice: VoiceRef
    params: GenerationParams
    seed: int
    max_new_tokens: int
    model: str | None = None
    #: ``sse`` (voicebox's choice), ``audio`` (raw bytes) or ``None`` (one whole body).
    stream_format: str | None = "sse"
    response_format: str = "pcm"


def data_url(wav: bytes) -> str:
    """A base64 data URL, one of the three ``ref_audio`` forms the server takes."""
    return "data:audio/wav;base64," + base64.b64encode(wav).decode("ascii")


def speech_body(chunk: ChunkRequest) -> dict[str, Any]:
    """The JSON body for one chunk (see the module docstring for why each field is so)."""
    params = chunk.params
    low, high = MAX_NEW_TOKENS_RANGE
    body: dict[str, Any] = {
        "input": chunk.text,
        "task_type": "Base",
        "language": chunk.language,
        "max_new_tokens": int(min(high, max(low, chunk.max_new_tokens))),
        "seed": int(chunk.seed),
        "extra_params": {
            # greedy on vLLM is temperature 0
            "temperature": float(params.temperature) if params.do_sample else 0.0,
            "top_k": int(params.top_k),
            "top_p": float(params.top_p),
            # not applied by 0.30.0 (deploy config's value wins); sent so the request says it
            "repetition_penalty": float(params.repetition_penalty),
        },
        "response_format": chunk.response_format,
        "sample_rate": SAMPLE_RATE,
    }
    if chunk.model:
        body["model"] = chunk.model
    if chunk.voice.name is not None:
        body["voice"] = chunk.voice.name
    else:
        body["ref_audio"] = data_url(chunk.voice.wav or b"")
        if chunk.voice.text.strip():
            body["ref_text"] = chunk.voice.text.strip()
        else:
            body["x_vector_only_mode"] = True
    if chunk.stream_format is not None:
        if chunk.response_format not in ("pcm", "wav"):
            raise ValueError("streaming needs response_format pcm or wav")
        body["stream"] = True
        body["stream_format"] = chunk.stream_format
    else:
        body["stream"] = False
    return body


# ---- audio --------------------------------------------------------------------------------------
def pcm16_to_float(data: bytes) -> np.ndarray:
    """Little-endian 16-bit PCM to float32 in [-1, 1)."""
    usable = len(data) - len(data) % 2
    return (np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0).copy()


def to_rate(audio: np.ndarray, rate: int, wanted: int = SAMPLE_RATE) -> np.ndarray:
    """``audio`` at ``wanted`` Hz (resampled only when the server answered another rate)."""
    if audio.size == 0:
        return audio.astype(np.float32, copy=False)
    return resample(audio, rate, wanted)


def _wav_header(data: bytes) -> tuple[int, int, int, int] | None:
    """(rate, channels, bits, offset of the samples) of a RIFF/WAVE header, or ``None``.

    A streamed WAV has ``0xFFFFFFFF`` placeholder sizes, which soundfile refuses, so the chunks are
    walked by hand up to ``data``.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    position, fmt = 12, None
    while position + 8 <= len(data):
        tag, size = data[position:position + 4], struct.unpack("<I", data[position + 4:position + 8])[0]
        if tag == b"fmt " and position + 24 <= len(data):
            _, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[position + 8:position + 24])
            fmt = (rate, channels, bits)
        if tag == b"data":
            return (*fmt, position + 8) if fmt else None
        position += 8 + size + (size & 1)
    return None


def decode_body(data: bytes, content_type: str = "", rate: int = SAMPLE_RATE) -> np.ndarray:
    """A whole (non-streamed) answer - WAV or raw PCM - as float32 mono at :data:`SAMPLE_RATE`."""
    header = _wav_header(data)
    if header is None:
        if "wav" in content_type or data[:4] == b"RIFF":
            raise ValueError("the server sent a WAV body voicebox cannot read")
        return to_rate(pcm16_to_float(data), rate)
    wav_rate, channels, bits, offset = header
    try:
        import soundfile as sf

        audio, wav_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        mono = audio.mean(axis=1)
    except Exception:  # noqa: BLE001 - streamed WAV (placeholder sizes): read the samples directly
        if bits != 16:
            raise ValueError(f"the server sent {bits}-bit WAV; voicebox reads 16-bit") from None
        samples = pcm16_to_float(data[offset:])
        usable = samples.size - samples.size % max(1, channels)
        mono = samples[:usable].reshape(-1, max(1, channels)).mean(axis=1)
    return to_rate(mono.astype(np.float32), int(wav_rate))


class PcmStream:
    """Raw ``stream_format: "audio"`` bytes to float32 pieces.

    Chunk boundaries need not fall on a sample, so an odd trailing byte waits for the next chunk;
    a ``wav`` stream's 44-byte header is skipped (and its rate read) first.
    """

    def __init__(self, response_format: str = "pcm", rate: int = SAMPLE_RATE) -> None:
        self.rate = rate
        self._header = response_format == "wav"
        self._pending = b""

    def feed(self, data: bytes) -> np.ndarray:
        self._pending += data
        if self._header:
            parsed = _wav_header(self._pending)
            if parsed is None:
                return np.zeros(0, np.float32)
            self.rate, _, _, offset = parsed
            self._pending, self._header = self._pending[offset:], False
        usable = len(self._pending) - len(self._pending) % 2
        piece, self._pending = self._pending[:usable], self._pending[usable:]
        return to_rate(pcm16_to_float(piece), self.rate)


# ---- server-sent events -------------------------------------------------------------------------
@dataclass(frozen=True)
class AudioDelta:
    """``speech.audio.delta``: one piece of audio (float32 mono at :data:`SAMPLE_RATE`)."""

    audio: np.ndarray


@dataclass(frozen=True)
class StreamDone:
    """``speech.audio.done``: ``output_tokens`` is the number of codec frames made."""

    output_tokens: int | None = None


@dataclass(frozen=True)
class StreamError:
    """``speech.audio.error``: the take failed (``partial``: audio was already sent)."""

    message: str
    code: int | None = None
    partial: bool = False

    @property
    def codec_limit(self) -> bool:
        return is_codec_limit(self.message)


StreamEvent = AudioDelta | StreamDone | StreamError


def sse_events(lines: Iterable[str]) -> Iterator[StreamEvent]:
    """Parse ``event:``/``data:`` lines (blank line ends an event) into typed events; unknown event
    types and comments are skipped, as the SSE format asks."""
    data: list[str] = []
    kind = ""
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                event = _sse_event(kind, "\n".join(data))
                if event is not None:
                    yield event
            data, kind = [], ""
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            kind = value
        elif field == "data":
            data.append(value)
    if data:
        event = _sse_event(kind, "\n".join(data))
        if event is not None:
            yield event


def _sse_event(kind: str, data: str) -> StreamEvent | None:
    try:
        payload = json.loads(data)
    except ValueError:
        return StreamError(f"the server sent an event voicebox cannot read: {data[:80]!r}")
    if not isinstance(payload, dict):
        return None
    kind = payload.get("type") or kind
    if kind == "speech.audio.delta":
        raw = base64.b64decode(payload.get("audio") or "")
        if payload.get("response_format") == "wav" and raw[:4] == b"RIFF":
            return AudioDelta(decode_body(raw))
        return AudioDelta(pcm16_to_float(raw))
    if kind == "speech.audio.done":
        usage = payload.get("usage") or {}
        tokens = usage.get("output_tokens") if isinstance(usage, dict) else None
        return StreamDone(int(tokens) if isinstance(tokens, int) else None)
    if kind == "speech.audio.error":
        error = payload.get("error") or {}
        if not isinstance(error, dict):
            error = {"message": str(error)}
        code = error.get("code")
        return StreamError(str(error.get("message") or "speech generation failed"),
                           int(code) if isinstance(code, int) else None, bool(error.get("partial_audio")))
    return None


# ---- errors -------------------------------------------------------------------------------------
def error_message(body: bytes | str, status: int) -> str:
    """The server's own words from an error answer (OpenAI ``{"error": {"message"}}``, FastAPI
    ``{"detail"}`` or the voice routes' ``{"error": "..."}``), else the status."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str) and error:
            return error
        detail = payload.get("detail")
        if isinstance(detail, str) and detail:
            return detail
        if detail:
            return json.dumps(detail)[:300]
    return text.strip()[:300] or f"HTTP {status}"


def is_codec_limit(message: str) -> bool:
    """True for the server's refusal of a Base take that reached ``max_new_tokens``."""
    return bool(_CODEC_LIMIT.search(message or ""))


def frames_of(samples: int, rate: int = SAMPLE_RATE) -> int:
    """Codec frames covering ``samples`` (12.5 per second, rounded up)."""
    per_frame = rate / FRAME_RATE
    return int(-(-samples // per_frame)) if samples else 0
