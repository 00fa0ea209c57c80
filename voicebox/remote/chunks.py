"""Making one sentence chunk on a vLLM-Omni server: the worker side of a remote take.

Why apart from :mod:`.backend`: this is the part that talks to a server about one chunk - choose
a server, make sure it has the voice, post the chunk, read the SSE answer into pieces (handed
to the waiting generator at once when the take is streamed) and turn every way it can go wrong
into the right outcome:

* a **server fault** (no connection, silence past ``VOICEBOX_REMOTE_TIMEOUT``, a 5xx or 429, a
  refused key) takes the server out (:mod:`.router`) and the chunk goes to another server - unless
  some of its audio is already playing, which cannot be taken back;
* the **cap** (the server refuses a Base take that reached ``max_new_tokens``) keeps the audio
  made so far and flags the chunk ``hit_cap``; a take that is not streamed makes it once more with
  its re-take seed (:func:`~voicebox.engines.params.chunk_seed` ``attempt=1``), as the GGML engine
  does; so does an empty answer (a server without ``min_tokens: 2``);
* a server that **forgot a registered voice** (restarted without it) gets it registered again;
* anything the server **refuses** about the sentence itself (400) is an
  :class:`~voicebox.errors.InvalidInput` in the server's words, cleaned of paths and the key.
"""

from __future__ import annotations

import time

import httpx
import numpy as np

from ..engines.params import GenerationParams, chunk_seed
from ..errors import Cancelled, InvalidInput, ModelUnavailable, VoiceboxError
from ..speech import ChunkResult
from .protocol import (
    MAX_NEW_TOKENS_RANGE,
    SAMPLE_RATE,
    AudioDelta,
    ChunkRequest,
    StreamDone,
    StreamError,
    VoiceRef,
    error_message,
    frames_of,
    is_codec_limit,
    speech_body,
    sse_events,
)
from .router import Router, Server, clean, describe
from .take import ChunkJob, Take, failure_message
from .voices import VoiceRegistry


class ServerFault(Exception):
    """The server failed (connection, timeout, 5xx): take it out and try another."""


class VoiceLost(Exception):
    """The server no longer knows a registered voice (it restarted without it): register again."""



class ChunkMaker:
    """Makes chunks on the router's servers (shared by every take of one backend)."""

    def __init__(self, client: httpx.Client, router: Router, voices: VoiceRegistry, timeout: float,
                 max_frames: int = 0, secret: str | None = None) -> None:
        self.client, self.router, self.voices = client, router, voices
        self.timeout, self.max_frames = timeout, max_frames
        self._key = secret

    def cap(self, text: str, params: GenerationParams) -> int:
        """The chunk's frame cap in the local engines' terms: at most ``cap - 1`` frames."""
        from ..engines.tts import max_frames_for

        ceiling = MAX_NEW_TOKENS_RANGE[1] + 1
        if self.max_frames:
            ceiling = min(ceiling, self.max_frames + 1)
        return max(2, min(ceiling, params.max_new_tokens or max_frames_for(text, ceiling)))
    def run(self, take: Take, job: ChunkJob) -> None:
        """On a worker thread: make one chunk, re-making it once with its re-take seed when a
        whole (not streamed) chunk hit its cap or came back empty."""
        try:
            seed = chunk_seed(take.request.params.seed, job.index)
            result = self._attempt(take, job, seed)
            if (result.hit_cap and not take.request.stream) or (result.audio.size == 0 and not job.delivered):
                result = self._attempt(take, job, chunk_seed(take.request.params.seed, job.index, 1))
            if result.audio.size == 0:
                raise ModelUnavailable("The speech server returned no audio for a sentence. Its deploy config "
                                       "needs min_tokens: 2 (vLLM-Omni's qwen3_tts.yaml has it).")
            job.events.put(("done", result))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            job.events.put(("error", exc if isinstance(exc, VoiceboxError) else
                            ModelUnavailable(f"The speech server's answer could not be used ({type(exc).__name__}).")))

    def _attempt(self, take: Take, job: ChunkJob, seed: int) -> ChunkResult:
        """One chunk at one seed: on a server chosen by the router, on another if it fails."""
        tried: set[int] = set()
        last = ""
        lost = 0
        while True:
            if take.stop.is_set():
                raise Cancelled("Generation cancelled.")
            try:
                server = self.router.acquire(take.size, exclude=tried)
            except ModelUnavailable:
                if not tried:
                    raise
                raise ModelUnavailable(failure_message(last, len(tried), self.timeout)) from None
            fault = None
            try:
                return self._on(server, take, job, seed)
            except VoiceLost as exc:
                lost += 1
                if lost > 1:
                    raise InvalidInput(f"The speech server refused this voice: {exc}") from None
            except ServerFault as exc:
                fault = last = str(exc)
                tried.add(server.index)
                if job.delivered:  # its audio is already playing: it cannot start again elsewhere
                    raise ModelUnavailable(failure_message(last, 1, self.timeout)) from None
            finally:
                self.router.release(server, fault)

    def _on(self, server: Server, take: Take, job: ChunkJob, seed: int) -> ChunkResult:
        params = take.request.params
        cap = self.cap(job.text, params)
        started = time.perf_counter()
        try:
            voice = self.voices.voice_for(server, take.ref)
            pieces, tokens, limit = self._stream(server, take, job, voice, seed, cap - 1)
        except httpx.TimeoutException:
            raise ServerFault(f"no answer within {self.timeout:g} s") from None
        except httpx.HTTPStatusError as exc:
            raise ServerFault(clean(f"HTTP {exc.response.status_code}: {exc}", self._key)) from None
        except httpx.HTTPError as exc:
            raise ServerFault(describe(exc)) from None
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        frames = tokens if tokens is not None else frames_of(audio.size)
        spent = time.perf_counter() - started
        take.generate_s += spent
        return ChunkResult(job.index, job.text, audio, SAMPLE_RATE, seed, frames=frames,
                           hit_cap=limit or frames >= cap - 1, timings={"total": round(spent, 4)})

    def _stream(self, server: Server, take: Take, job: ChunkJob, voice: VoiceRef, seed: int,
                max_new_tokens: int) -> tuple[list[np.ndarray], int | None, bool]:
        """POST the chunk and read its SSE answer: (pieces, frames the server made, hit the cap)."""
        body = speech_body(ChunkRequest(job.text, take.language, voice, take.request.params, seed, max_new_tokens,
                                        model=server.model))
        pieces: list[np.ndarray] = []
        with self.client.stream("POST", server.url + "/v1/audio/speech", json=body,
                                headers=self.router.headers) as response:
            take.track(response)
            try:
                if response.status_code != 200:
                    message = error_message(response.read(), response.status_code)
                    if is_codec_limit(message):
                        return pieces, None, True
                    self._refused(server, voice, response.status_code, message)
                for event in sse_events(response.iter_lines()):
                    if take.stop.is_set():
                        raise Cancelled("Generation cancelled.")
                    if isinstance(event, AudioDelta):
                        pieces.append(event.audio)
                        if take.request.stream and event.audio.size:
                            job.delivered = True
                            job.events.put(("piece", event.audio))
                    elif isinstance(event, StreamDone):
                        return pieces, event.output_tokens, False
                    elif isinstance(event, StreamError):
                        if event.codec_limit:
                            return pieces, None, True
                        raise ModelUnavailable("The speech server failed on this sentence: "
                                               f"{clean(event.message, self._key)}")
            finally:
                take.untrack(response)
        if take.stop.is_set():
            raise Cancelled("Generation cancelled.")
        raise ServerFault("the answer ended early")

    def _refused(self, server: Server, voice: VoiceRef, status: int, message: str) -> None:
        """A non-200 answer as the right error (always raises)."""
        said = clean(message, self._key)
        if status in (401, 403):
            raise ServerFault(f"HTTP {status}: the server refused voicebox's key (check VOICEBOX_REMOTE_API_KEY)")
        if status >= 500 or status == 429:
            raise ServerFault(f"HTTP {status}: {said}")
        if voice.name is not None and voice.name in message.lower():
            self.voices.lost(server, voice.name)  # the server forgot the voice: register it again
            raise VoiceLost(said)
        raise InvalidInput(f"The speech server refused this sentence: {said}")
