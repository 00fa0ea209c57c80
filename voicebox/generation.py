"""The generation use-case: a :class:`~voicebox.records.GenerationRequest` in, a saved take out.

Every way of asking for speech (the Generate tab, ``POST /generate``, the OpenAI route, the
hidden Gradio API, the CLI) builds one request and comes here. :meth:`Takes.plan` validates all of
it before any model work (so a mistake is answered at once, even while another take holds the
model); :meth:`Takes.events` runs the backend and yields the job events of :mod:`voicebox.jobs`,
joining chunks with :class:`~voicebox.assembly.TakeAssembler` and saving the take with its
chunk records at the end: audio first (atomically), then the record that points at it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from . import audio
from .assembly import TakeAssembler, incomplete_message, speech_request
from .atomic import atomic_write_bytes, remove_quietly, remove_quietly_dir
from .engines.device import resolve_device
from .engines.params import check_text, make_params
from .errors import Cancelled, InvalidInput
from .jobs import Job, JobAudio, JobChunk, JobDone, JobEvent, JobProgress
from .records import Chunk, ChunkTake, Generation, GenerationRequest, Profile
from .retakes import QUALITY_MODES, Retaker, SentenceTakes
from .speech import ChunkResult, Progress, SpeechDone, SpeechRequest, VoiceSample
from .store import new_id

if TYPE_CHECKING:
    from .quality import ChunkScore, VoiceRef
    from .services import Studio

#: Most takes of one sentence a request may ask for.
MAX_TAKES_LIMIT = 10
#: Said with a take that could not be checked because a checking model is missing.
UNCHECKED = "The sentences were not checked: the checking models are not available (see the Models tab)."
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """A request that passed every check: the profile, what the backend will be asked, and how
    strictly each sentence is checked (``quality`` ``off``/``check``/``retake``, ``max_takes``)."""

    profile: Profile
    text: str
    speech: SpeechRequest
    quality: str = "off"
    max_takes: int = 1
    note: str = ""  # said with the take's status (e.g. why it was not checked)
    project_id: str = ""


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
        quality, max_takes = self._quality(request)
        return Plan(profile, text, speech, quality, max_takes, project_id=request.project_id or "")

    def _quality(self, request: GenerationRequest) -> tuple[str, int]:
        """The request's gate, else the server's; ``auto`` is ``retake`` on a GPU, ``check`` on a CPU."""
        settings = self.studio.settings
        mode = str(request.quality or settings.quality).strip().lower()
        if mode not in QUALITY_MODES + ("auto",):
            raise InvalidInput(f"quality {request.quality!r} is not one of off, check, retake.")
        if mode == "auto":  # the configured device, not the engine's status (no model lock needed)
            mode = "retake" if resolve_device(settings.device) == "cuda" else "check"
        if mode != "retake":
            return mode, 1
        max_takes = request.max_takes if request.max_takes not in (None, "") else settings.max_takes
        try:
            max_takes = int(max_takes)
        except (TypeError, ValueError):
            max_takes = 0
        if not 1 <= max_takes <= MAX_TAKES_LIMIT:
            raise InvalidInput(f"max_takes must be a whole number from 1 to {MAX_TAKES_LIMIT}.")
        return mode, max_takes

    def events(self, request: GenerationRequest, stream: bool = False,
               cancel: threading.Event | None = None) -> Iterator[JobEvent]:
        """Make and save one take, as job events (the last one :class:`JobDone`)."""
        plan = self.plan(request, stream)
        if cancel is not None and cancel.is_set():
            raise Cancelled("Generation cancelled.")
        assembler = TakeAssembler()
        for event in self.studio.tts.speak(plan.speech, cancel):
            if isinstance(event, Progress):
                if event.stage != "saving":  # said below, once the sentences are checked
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
        results = [assembler.results[i] for i in sorted(assembler.results)]
        sentences = [SentenceTakes(r.index, [(r, None)]) for r in results]
        if plan.quality != "off":
            retaker = Retaker(self.studio.tts, self.studio.quality_gate())
            try:
                sentences = yield from retaker.run(
                    plan.speech, results, plan.quality, plan.max_takes, voice_ref(plan.speech.voice), cancel
                )
            except Cancelled:
                raise
            except Exception as exc:  # a checking model is missing or failed: keep the take, unchecked
                log.warning("the take was not checked: %s", getattr(exc, "message", exc), exc_info=True)
                plan = replace(plan, quality="off", note=UNCHECKED)
        # The saved take joins the sentences exactly as stored (16-bit), as a later re-take of one
        # sentence rebuilds it: then the other sentences, and a restored take, stay byte-identical.
        assembler = joined([stored(s.result) for s in sentences], assembler.done)
        if cancel is not None and cancel.is_set():  # cancelled while the sentences were checked
            raise Cancelled("Generation cancelled.")
        yield JobProgress("saving", len(sentences), len(sentences))
        yield JobDone(self.save(plan, assembler, sentences))

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

    def save(self, plan: Plan, assembler: TakeAssembler, sentences: list[SentenceTakes]) -> Generation:
        """Write the audio (atomically): each take of each sentence, then the joined take, then
        the record that points at them."""
        studio = self.studio
        done: SpeechDone = assembler.done
        samples = assembler.audio()
        generation_id = new_id()
        relative = f"generations/{generation_id}.wav"
        written: list[Path] = []
        try:
            chunks = []
            for sentence, placed in zip(sentences, assembler.chunks()):
                takes = []
                for number, (result, score) in enumerate(sentence.takes):
                    take_file = f"generations/{generation_id}/{sentence.index}-{number}.wav"
                    written.append(studio.settings.data_dir / take_file)
                    atomic_write_bytes(written[-1], audio.wav_bytes(result.audio, result.sample_rate))
                    takes.append(take_record(result, score, take_file))
                chunks.append(replace(placed, status=sentence_status(sentence), takes=tuple(takes),
                                      used_take=sentence.used, text=sentence.result.text, seed=sentence.result.seed))
            written.append(studio.settings.data_dir / relative)
            atomic_write_bytes(written[-1], audio.wav_bytes(samples, done.sample_rate))
            status, message = take_status(chunks)
            message = " ".join(m for m in (message, plan.note) if m)
            record = Generation(
                id=generation_id, profile_id=plan.profile.id, profile_name=plan.profile.name,
                text=plan.text, file=relative, language=done.language, model=done.model.source,
                size=done.model.size, mode=done.mode, seed=int(plan.speech.params.seed),
                duration=round(len(samples) / done.sample_rate, 3), params=plan.speech.params.to_dict(),
                timings=dict(done.timings), cache_hit=done.cache_hit, chunks=tuple(chunks),
                status=status, message=message, backend=getattr(studio.tts, "name", "speech"), quality=plan.quality,
                project_id=plan.project_id,
            )
            data = record.to_dict()
            del data["created_at"]  # the store stamps it
            return Generation.from_dict(studio.store.add_generation(data))
        except BaseException:
            for path in written:  # no orphan files if the record fails
                remove_quietly(path)
            remove_quietly_dir(studio.settings.data_dir / "generations" / generation_id)
            raise


def voice_ref(voice: tuple[VoiceSample, ...]) -> "VoiceRef":
    """The gate's handle on a voice: its samples, keyed by their hashes (edits change the key)."""
    from .quality import VoiceRef

    return VoiceRef(key="|".join(sorted(s.sha256 for s in voice)), samples=tuple(voice))


def joined(results: list[ChunkResult], done: SpeechDone | None) -> TakeAssembler:
    """A fresh assembler over the takes in use (same crossfade, new offsets)."""
    assembler = TakeAssembler()
    for result in results:
        assembler.add(result)
    if done is not None:
        assembler.add(done)
    assembler.finish()
    return assembler


def stored(result: ChunkResult) -> ChunkResult:
    """A chunk's audio as its 16-bit file will hold it."""
    return replace(result, audio=audio.from_pcm16(audio.pcm16(result.audio)))


def take_record(result: ChunkResult, score: "ChunkScore | None", file: str) -> ChunkTake:
    return ChunkTake(
        seed=result.seed, text=result.text, file=file, duration=result.duration, frames=result.frames,
        hit_cap=result.hit_cap, passed=None if score is None else score.passed,
        score=None if score is None else round(score.score, 4), scores={} if score is None else score.to_dict(),
    )


def chunk_status(passed: bool | None, hit_cap: bool) -> str:
    """``needs_review`` when the take in use failed a check (a take that ran to the length cap
    fails the words and pace checks too), else ``incomplete`` when it hit the cap unchecked."""
    if passed is False:
        return "needs_review"
    return "incomplete" if hit_cap else "ok"


def sentence_status(sentence: SentenceTakes) -> str:
    return chunk_status(sentence.passed, sentence.result.hit_cap)


def take_status(chunks: list[Chunk]) -> tuple[str, str]:
    """``needs_review`` (a sentence never passed the checks) before ``incomplete`` (a sentence hit
    the length cap) before ``ok``, with a message that names the sentences and the first reason."""
    total = len(chunks)
    failing = [c for c in chunks if c.status == "needs_review"]
    if failing:
        which = ", ".join(str(c.index + 1) for c in failing)
        used = failing[0].takes[failing[0].used_take] if failing[0].takes else None
        reason = ""
        if used is not None and used.scores:
            from .quality import ChunkScore

            said = ChunkScore.from_dict(used.scores).reason()
            reason = f" ({said})" if said else ""
        capped = " It hit the length limit, so it may be cut off." if used is not None and used.hit_cap else ""
        sentences = "Sentence" if len(failing) == 1 else "Sentences"
        return "needs_review", (
            f"{sentences} {which} of {total} did not pass the quality checks{reason}.{capped} Listen to "
            f"{'it' if len(failing) == 1 else 'them'} and make another take if needed."
        )
    capped_chunks = [c.index for c in chunks if c.status == "incomplete"]
    if capped_chunks:
        return "incomplete", incomplete_message(capped_chunks, total)
    return "ok", ""
