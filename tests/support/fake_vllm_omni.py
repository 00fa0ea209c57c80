"""A small stand-in for a vLLM-Omni server, speaking with espeak-ng, for the remote backend's tests.

It follows the protocol of **vllm-omni 0.30.0** (PyPI) and its ``docs/serving/speech_api.md`` at
vllm-project/vllm-omni commit ``078de2d14c2fcc670c1e0dd492e1b84a69c69d15`` (summarised in
``docs/remote-protocol.md``): ``GET /health``, ``GET /v1/models``, ``POST /v1/audio/speech``
(whole WAV/PCM bodies, raw ``stream_format: "audio"`` and SSE ``speech.audio.*`` events; Base-task
validation; a take that reaches ``max_new_tokens`` is refused - HTTP 500, or the partial audio then
``speech.audio.error`` - as the real server's Qwen3-TTS adapter does), and the voice registry
``GET/POST /v1/audio/voices``, ``DELETE /v1/audio/voices/{name}``. Optional bearer key.

Its speech is espeak-ng's (intelligible, so Whisper can check a take end to end), at 24 kHz.
Knobs for tests: :meth:`FakeVllmOmni.fail_next`, :meth:`FakeVllmOmni.say_instead` (the wrong words
for a sentence, as a model that garbles one; ``swaps`` may be one :class:`Swaps` shared by several
fakes, so a count holds across servers), ``delay`` (before answering), ``piece_delay``
(between streamed pieces), :attr:`hang` (a request blocks, silent, until released), ``registry``
(off: the voice routes answer 404), ``healthy``; and records: ``bodies`` (speech request bodies),
``registrations``, ``deletions``, ``disconnects``, ``max_active`` (requests in flight at once).
"""

from __future__ import annotations

import base64
import io
import json
import math
import shutil
import subprocess
import threading
import time
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import soundfile as sf

RATE = 24_000
SAMPLES_PER_FRAME = 1920
LANGUAGES = {"Auto", "Chinese", "English", "Japanese", "Korean", "German", "French", "Russian", "Portuguese",
             "Spanish", "Italian"}
ESPEAK_VOICES = {"German": "de", "French": "fr", "Spanish": "es", "Italian": "it"}
PIECE_SAMPLES = 9600  # 0.4 s per streamed piece


def espeak(text: str, language: str = "Auto", pitch: int = 50) -> np.ndarray:
    """espeak-ng's speech for ``text`` as float32 at 24 kHz."""
    import soxr

    voice = ESPEAK_VOICES.get(language, "en-us")
    wav = subprocess.run(["espeak-ng", "--stdout", "-v", voice, "-p", str(pitch), text],
                         check=True, capture_output=True).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    return soxr.resample(audio.mean(axis=1), rate, RATE).astype(np.float32)


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


class Swaps:
    """Sentences to garble: the next ``count`` requests whose ``input`` contains ``match`` speak
    ``words`` instead (thread-safe; one instance may serve several fakes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[list[Any]] = []  # [match, words, remaining]
        self.used = 0

    def add(self, match: str, words: str, count: int = 1) -> None:
        with self._lock:
            self._rules.append([match, words, count])

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self.used = 0

    def words_for(self, text: str) -> str:
        with self._lock:
            for rule in self._rules:
                if rule[2] > 0 and rule[0] in text:
                    rule[2] -= 1
                    self.used += 1
                    return str(rule[1])
        return text


class _HTTPServer(ThreadingHTTPServer):
    # the default listen backlog (5) drops connections when 64 requests arrive at once (the bench)
    request_queue_size = 128
    daemon_threads = True


class FakeVllmOmni:
    """The server in a thread on 127.0.0.1 (a free port); ``url`` is its base URL."""

    def __init__(self, model: str = "Qwen/Qwen3-TTS-12Hz-0.6B-Base", api_key: str | None = None) -> None:
        if shutil.which("espeak-ng") is None:
            raise RuntimeError("espeak-ng is not installed (make test installs it)")
        self.model, self.api_key = model, api_key
        self.registry, self.healthy = True, True
        self.delay = self.piece_delay = 0.0
        self.hang = threading.Event()  # set: requests block until released
        self.release = threading.Event()
        self.bodies: list[dict[str, Any]] = []
        self.voices: dict[str, dict[str, Any]] = {}
        self.registrations: list[str] = []
        self.deletions: list[str] = []
        self.disconnects = 0
        self.active = self.max_active = 0
        self.seen_keys: list[str | None] = []
        self._failures: list[int] = []
        self.swaps = Swaps()
        self._lock = threading.Lock()
        self._http = _HTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, name="fake-vllm-omni", daemon=True)
        self._thread.start()

    def fail_next(self, count: int, status: int = 500) -> None:
        """The next ``count`` speech requests answer ``status`` (a server error)."""
        with self._lock:
            self._failures.extend([status] * count)

    def say_instead(self, match: str, words: str, count: int = 1) -> None:
        """The next ``count`` speech requests whose input contains ``match`` speak ``words``."""
        self.swaps.add(match, words, count)

    def reset(self) -> None:
        """Forget records and knobs (between tests sharing the server); keeps registered voices."""
        with self._lock:
            self.bodies.clear()
            self.registrations.clear()
            self.deletions.clear()
            self.seen_keys.clear()
            self._failures.clear()
            self.disconnects = self.max_active = 0
        self.swaps.clear()
        self.delay = self.piece_delay = 0.0
        self.registry = self.healthy = True
        self.hang.clear()
        self.release.clear()

    def stop(self) -> None:
        self.release.set()
        self._http.shutdown()
        self._http.server_close()

    # ---- what the handler asks -------------------------------------------------------------------
    def take_failure(self) -> int | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def enter(self) -> None:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)

    def leave(self) -> None:
        with self._lock:
            self.active -= 1


def _handler(fake: FakeVllmOmni) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        # ---- plumbing ---------------------------------------------------------------------------
        def _json(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            kind = {400: "BadRequestError", 401: "Unauthorized", 404: "NotFoundError"}.get(status, "InternalServerError")
            self._json(status, {"error": {"message": message, "type": kind, "param": None, "code": status}})

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _authorized(self) -> bool:
            sent = self.headers.get("Authorization")
            fake.seen_keys.append(sent)
            if fake.api_key and self.path.startswith("/v1") and sent != f"Bearer {fake.api_key}":
                self._body()
                self._json(401, {"error": "Unauthorized"})
                return False
            return True

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        # ---- routes -----------------------------------------------------------------------------
        def do_GET(self) -> None:
            if self.path == "/health":
                self._body()
                self._json(200 if fake.healthy else 503, {"status": "healthy" if fake.healthy else "unhealthy"})
            elif not self._authorized():
                return
            elif self.path == "/v1/models":
                self._json(200, {"object": "list", "data": [{"id": fake.model, "object": "model", "owned_by": "vllm-omni"}]})
            elif self.path == "/v1/audio/voices" and fake.registry:
                uploaded = [{k: v for k, v in info.items() if k != "audio"} for info in fake.voices.values()]
                self._json(200, {"voices": sorted(fake.voices), "uploaded_voices": uploaded})
            else:
                self._error(404, "Not Found")

        def do_DELETE(self) -> None:
            if not self._authorized():
                return
            name = self.path.rsplit("/", 1)[-1].lower()
            if not (fake.registry and self.path.startswith("/v1/audio/voices/")):
                self._error(404, "Not Found")
            elif fake.voices.pop(name, None) is None:
                self._json(404, {"success": False, "error": f"Voice '{name}' not found"})
            else:
                fake.deletions.append(name)
                self._json(200, {"success": True, "message": f"Voice '{name}' deleted successfully"})

        def do_POST(self) -> None:
            if not self._authorized():
                return
            if self.path == "/v1/audio/voices":
                self._upload()
            elif self.path == "/v1/audio/speech":
                fake.enter()
                try:
                    self._speech()
                except (BrokenPipeError, ConnectionResetError):
                    fake.disconnects += 1
                finally:
                    fake.leave()
            else:
                self._body()
                self._error(404, "Not Found")

        def _upload(self) -> None:
            raw = self._body()
            if not fake.registry:
                self._error(404, "Not Found")
                return
            message = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + raw)
            form: dict[str, Any] = {}
            for part in message.iter_parts():
                form[part.get_param("name", header="content-disposition")] = part.get_payload(decode=True)
            if not form.get("name") or not form.get("consent") or not form.get("audio_sample"):
                self._error(400, "audio_sample, consent and name are required")
                return
            audio, rate = sf.read(io.BytesIO(form["audio_sample"]), dtype="float32")
            if not 1.0 <= len(audio) / rate <= 30.0:
                self._json(400, {"error": {"message": "Reference audio must be 1-30 s", "code": 400}})
                return
            name = form["name"].decode().strip().lower()
            info = {"name": name, "consent": form["consent"].decode(), "created_at": int(time.time()),
                    "file_size": len(form["audio_sample"]), "mime_type": "audio/wav"}
            if form.get("ref_text"):
                info["ref_text"] = form["ref_text"].decode()
            fake.voices[name] = {**info, "audio": audio}
            fake.registrations.append(name)
            self._json(200, {"success": True, "voice": info})

        def _speech(self) -> None:
            body = json.loads(self._body() or b"{}")
            fake.bodies.append(body)
            failure = fake.take_failure()
            if failure is not None:
                self._error(failure, "engine failure (fake)")
                return
            if fake.hang.is_set():
                fake.release.wait(30)
                return
            if fake.delay:
                time.sleep(fake.delay)
            problem = validate(body, fake)
            if problem:
                self._error(400, problem)
                return
            cap = body.get("max_new_tokens") or 4096
            audio = espeak(fake.swaps.words_for(body["input"]), body.get("language") or "Auto", pitch=20 + int(body.get("seed") or 0) % 60)
            frames = math.ceil(audio.size / SAMPLES_PER_FRAME)
            limited = frames > cap
            if limited:
                audio, frames = audio[: cap * SAMPLES_PER_FRAME], cap
            limit_message = (f"Qwen3-TTS Base did not emit codec EOS before its token budget ({cap}/{cap} codec "
                             "tokens); the generated audio is incomplete.")
            fmt = body.get("response_format", "wav")
            stream_format = body.get("stream_format") or ("sse" if body.get("stream") else None)
            if stream_format is None:
                if limited:
                    self._error(500, limit_message)
                    return
                data = wav_bytes(audio) if fmt == "wav" else pcm16(audio)
                self.send_response(200)
                self.send_header("Content-Type", "audio/wav" if fmt == "wav" else "audio/pcm")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-vllm-omni-output-tokens", str(frames))
                self.end_headers()
                self.wfile.write(data)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream" if stream_format == "sse" else f"audio/{fmt}")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            pieces = [audio[i:i + PIECE_SAMPLES] for i in range(0, audio.size, PIECE_SAMPLES)]
            if stream_format == "audio":
                data = (wav_stream_header() if fmt == "wav" else b"") + pcm16(audio)
                for i in range(0, len(data), 4801):  # odd sizes: a sample split across chunks
                    self._chunk(data[i:i + 4801])
                    time.sleep(fake.piece_delay)
            else:
                for piece in pieces:
                    event = {"type": "speech.audio.delta", "audio": base64.b64encode(pcm16(piece)).decode(),
                             "response_format": "pcm"}
                    self._chunk(f"event: speech.audio.delta\ndata: {json.dumps(event)}\n\n".encode())
                    time.sleep(fake.piece_delay)
                if limited:
                    end = {"type": "speech.audio.error", "error": {"message": limit_message, "type": "server_error",
                                                                   "param": None, "code": 500, "partial_audio": True,
                                                                   "action": "discard"}}
                else:
                    end = {"type": "speech.audio.done", "usage": {"input_tokens": 10, "output_tokens": frames,
                                                                  "total_tokens": 10 + frames}}
                self._chunk(f"event: {end['type']}\ndata: {json.dumps(end)}\n\n".encode())
            self._chunk(b"")

    return Handler


def validate(body: dict[str, Any], fake: FakeVllmOmni) -> str | None:
    """The Qwen3-TTS Base adapter's checks, as 0.30.0 makes them."""
    if not str(body.get("input") or "").strip():
        return "Input text cannot be empty"
    if body.get("task_type") not in (None, "Base"):
        return f"Qwen3-TTS Base checkpoint does not support task_type='{body.get('task_type')}'."
    language = str(body.get("language") or "Auto").title()
    if language not in LANGUAGES:
        return f"Invalid language '{language}'. Supported: {', '.join(sorted(LANGUAGES))}"
    voice = body.get("voice")
    if voice is not None:
        if voice.lower() not in fake.voices:
            return f"Base task with built-in speaker '{voice}' requires 'ref_audio' for voice cloning"
    else:
        ref = body.get("ref_audio")
        if not isinstance(ref, str) or not ref.startswith(("data:", "http://", "https://", "file://")):
            return "Base task requires 'ref_audio' or 'speaker_embedding' for voice cloning"
        if not body.get("x_vector_only_mode") and not str(body.get("ref_text") or "").strip():
            return ("Base task requires non-empty 'ref_text' (transcript of the reference audio) unless "
                    "'x_vector_only_mode' is enabled")
    tokens = body.get("max_new_tokens")
    if tokens is not None and not 1 <= int(tokens) <= 4096:
        return "max_new_tokens must be between 1 and 4096"
    if (body.get("stream") or body.get("stream_format")) and body.get("response_format", "wav") not in ("pcm", "wav"):
        return "Streaming requires response_format='pcm' or 'wav'."
    return None


def wav_bytes(audio: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def wav_stream_header(rate: int = RATE) -> bytes:
    """The streamed WAV header: sizes unknown (``0xFFFFFFFF``), as the server writes it."""
    import struct

    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 0xFFFFFFFF, b"WAVE", b"fmt ", 16, 1, 1, rate, rate * 2, 2, 16,
                       b"data", 0xFFFFFFFF)


def reference_sample(folder: Any, text: str = "The quick brown fox jumps over the lazy dog near the river bank.",
                     name: str = "reference.wav") -> Any:
    """A voice sample (espeak-ng speech, its transcript and hash) in ``folder`` for the backend."""
    import hashlib
    from pathlib import Path

    from voicebox.speech import VoiceSample

    path = Path(folder) / name
    path.write_bytes(wav_bytes(espeak(text)))
    return VoiceSample(path, hashlib.sha256(path.read_bytes()).hexdigest(), text)
