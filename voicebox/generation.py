"""The generation use-case: a :class:`~voicebox.records.GenerationRequest` in, a saved take out.

Every way of asking for speech (the Generate tab, ``POST /generate``, the OpenAI route, the
hidden Gradio API, the CLI) builds one request and comes here. :meth:`Takes.plan` validates all of
it before any model work (so a mistake is answered at once, even while another take holds the
model); :meth:`Takes.events` runs the backend and yields the job events of :mod:`voicebox.jobs`,
joining chunks with :class:`~voicebox.assembly.TakeAssembler` and saving the take with its
chunk records at the end: audio first (atomically), then the record that points at it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from . import audio
from .assembly import TakeAssembler, incomplete_message, speech_request
from .atomic import atomic_write_bytes, remove_quietly
from .engines.params import check_text, make_params
from .errors import Cancelled
from .jobs import Job, JobAudio, JobChunk, JobDone, JobEvent, JobProgress
from .records import Generation, GenerationRequest, Profile
from .speech import ChunkResult, Progress, SpeechDone, SpeechRequest
from .store import new_id

if TYPE_CHECKING:
    from .services import Studio


@dataclass(frozen=True)
class Plan:
    """A request that passed every check: the profile and what the backend will be asked."""

    profile: Profile
    text: str
    speech: SpeechRequest


class Takes:
    """Makes takes for a :class:`~voicebox.services.Studio` (its store, backend and files)."""

    def __init__(self, studio: "Studio") -> None:
        self.studio = studio

    def plan(self, request: GenerationRequest, stream: bool = False) -> Plan:
        """Validate everything before any model work starts; fixes the seed."""
        studio = self.studio
        text = check_text(request.text)
        size = studio.check_size(request.model_size)
        params = make_params(
            request.preset, temperature=request.temperature, top_k=request.top_k, top_p=request.top_p,
            repetition_penalty=request.repetition_penalty, seed=request.seed, max_new_tokens=request.max_new_tokens,
        )
        profile = Profile.from_dict(studio.store.get_profile(request.profile_id))
        voice = studio.references(request.profile_id)
        chosen = request.language if request.language not in (None, "") else profile.language
        speech = speech_request(text, voice, params, chosen, size, stream=stream)
        return Plan(profile, text, speech)

    def events(self, request: GenerationRequest, stream: bool = False,
               cancel: threading.Event | None = None) -> Iterator[JobEvent]:
        """Make and save one take, as job events (the last one :class:`JobDone`)."""
        plan = self.plan(request, stream)
        if cancel is not None and cancel.is_set():
            raise Cancelled("Generation cancelled.")
        assembler = TakeAssembler()
        for event in self.studio.tts.speak(plan.speech, cancel):
            if isinstance(event, Progress):
                yield JobProgress(event.stage, event.done, event.total)
                continue
            ready = assembler.add(event)
            if stream and len(ready):
                yield JobAudio(ready)
            if isinstance(event, ChunkResult):
                chunk = next(c for c in assembler.chunks() if c.index == event.index)
                yield JobChunk(chunk)
        tail = assembler.finish()
        if stream and len(tail):
            yield JobAudio(tail)
        yield JobDone(self.save(plan, assembler))

    def start(self, request: GenerationRequest, stream: bool = True, cancel: threading.Event | None = None) -> Job:
        """Start a take on a thread of its own; validation errors are raised here, at once."""
        self.plan(request, stream)
        return Job(lambda event: self.events(request, stream, event), cancel)

    def run(self, request: GenerationRequest, cancel: threading.Event | None = None) -> Generation:
        """Make a take on the caller's thread and return the saved record."""
        for event in self.events(request, stream=False, cancel=cancel):
            if isinstance(event, JobDone):
                return event.generation
        raise RuntimeError("the take ended without being saved")  # pragma: no cover

    def save(self, plan: Plan, assembler: TakeAssembler) -> Generation:
        """Write the audio (atomically), then the record that points at it."""
        studio = self.studio
        done: SpeechDone = assembler.done
        samples = assembler.audio()
        generation_id = new_id()
        relative = f"generations/{generation_id}.wav"
        atomic_write_bytes(studio.settings.data_dir / relative, audio.wav_bytes(samples, done.sample_rate))
        failed = assembler.failed()
        record = Generation(
            id=generation_id, profile_id=plan.profile.id, profile_name=plan.profile.name,
            text=plan.text, file=relative, language=done.language, model=done.model.source,
            size=done.model.size, mode=done.mode, seed=int(plan.speech.params.seed),
            duration=round(len(samples) / done.sample_rate, 3), params=plan.speech.params.to_dict(),
            timings=dict(done.timings), cache_hit=done.cache_hit, chunks=tuple(assembler.chunks()),
            status="incomplete" if failed else "ok", message=incomplete_message(failed, len(plan.speech.chunks)),
            backend=getattr(studio.tts, "name", "speech"),
        )
        data = record.to_dict()
        del data["created_at"]  # the store stamps it
        try:
            return Generation.from_dict(studio.store.add_generation(data))
        except BaseException:
            remove_quietly(studio.settings.data_dir / relative)
            raise

