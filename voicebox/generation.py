"""The generation use-case: a :class:`~voicebox.records.GenerationRequest` in, a saved take out.

Every way of asking for speech (the Generate tab, ``POST /generate``, the OpenAI route, the
hidden Gradio API, the CLI) builds one request and comes here. :meth:`Takes.plan` validates all of
it before any model work (so a mistake is answered at once, even while another take holds the
model); :meth:`Takes.events` runs the backend and yields the job events of :mod:`voicebox.jobs`,
joining chunks with :class:`~voicebox.assembly.TakeAssembler` and saving the take with its
chunk records at the end: audio first (atomically), then the record that points at it.
:meth:`Takes.group` makes several takes of one voice in one backend request (a project's short
blocks: the engine batches their chunks) and still saves each as a take of its own.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Generator, Iterator, Sequence, TypeVar

from . import audio
from .assembly import CHUNK_MAX_CHARS, TakeAssembler, incomplete_message, speech_request
from .atomic import atomic_write_bytes, remove_quietly, remove_quietly_dir
from .engines.device import resolve_device
from .engines.params import check_text, make_params
from .engines.text_split import chunk_text
from .effects import EffectChain, for_take
from .errors import Cancelled, InvalidInput, VoiceboxError
from .ids import new_id
from .jobs import Job, JobAudio, JobChunk, JobDone, JobEvent, JobProgress
from .owners import relative as owned_path
from .owners import root as owner_root
from .records import Chunk, ChunkTake, Generation, GenerationRequest, Profile
from .retakes import QUALITY_MODES, Retaker, SentenceTakes
from .speakers import PREFIX as SPEAKER
from .speakers import backend_for, check_style, is_speaker
from .speech import ChunkResult, Progress, SpeechDone, SpeechRequest, VoiceSample, batch_rows

if TYPE_CHECKING:
    from .quality import ChunkScore, VoiceRef
    from .services import Studio

#: Most takes of one sentence a request may ask for.
MAX_TAKES_LIMIT = 10
#: Said with a take that could not be checked because a checking model is missing.
UNCHECKED = "The sentences were not checked: the checking models are not available (see the Models tab)."
log = logging.getLogger(__name__)
T = TypeVar("T")


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
    owner: str = ""  # whose profile it speaks with, and so whose take it becomes
    effects: EffectChain | None = None  # the request's, else the voice's default (not a project's)


@dataclass(frozen=True)
class Share:
    """One take's part of a group's speech (:meth:`Takes.group`): its plan, carrying the group's
    seed; its chunks as the backend returned them, numbered from ``first`` (where they start among
    the group's chunks); and the group's timings scaled to its share of the audio."""

    plan: Plan
    results: tuple[ChunkResult, ...]
    done: SpeechDone
    first: int


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
        style = check_style(request.profile_id, request.instruct, studio.speakers)
        if is_speaker(request.profile_id):  # a built-in voice: a name, no samples, its own model
            profile, voice = studio.speakers.profile(request.profile_id), []
            size, speaker = studio.speakers.size, profile.id[len(SPEAKER):]
        else:
            profile = Profile.from_dict(studio.store.get_profile(request.profile_id, request.owner))
            voice, speaker = studio.references(request.profile_id, owner=request.owner), ""
        chosen = request.language if request.language not in (None, "") else profile.language
        speech = speech_request(text, voice, params, chosen, size, stream=stream, speaker=speaker, instruct=style)
        quality, max_takes = self._quality(request)
        effects = for_take(request.effects, None if request.project_id else profile.effects)
        return Plan(profile, text, speech, quality, max_takes, project_id=request.project_id or "",
                    owner=request.owner, effects=effects)

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
        yield from self.make(self.plan(request, stream), stream, cancel)

    def make(self, plan: Plan, stream: bool = False, cancel: threading.Event | None = None) -> Iterator[JobEvent]:
        """Make and save the take of a plan already checked (see :meth:`events`)."""
        if cancel is not None and cancel.is_set():
            raise Cancelled("Generation cancelled.")
        assembler = TakeAssembler()
        for event in backend_for(self.studio, plan.speech).speak(plan.speech, cancel):
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
        generation = yield from self.finish(plan, results, assembler.done, cancel)
        yield JobDone(generation)

    def finish(self, plan: Plan, results: Sequence[ChunkResult], done: SpeechDone | None,
               cancel: threading.Event | None, first: int = 0) -> Generator[JobEvent, None, Generation]:
        """Check the sentences (the quality gate), join them as stored and save the take.

        ``first``: where ``results`` start among the chunks the backend was given. A take made in a
        group keeps those numbers through the gate, so its re-takes are seeded as in one take of
        the group's text (no two blocks of a group share a re-take seed); it is saved counting
        from 0, as every take is."""
        sentences = [SentenceTakes(r.index, [(r, None)]) for r in results]
        if plan.quality != "off":
            retaker = Retaker(backend_for(self.studio, plan.speech), self.studio.quality_gate())
            try:
                sentences = yield from retaker.run(
                    plan.speech, list(results), plan.quality, plan.max_takes, voice_ref(plan.speech.voice), cancel
                )
            except Cancelled:
                raise
            except Exception as exc:  # a checking model is missing or failed: keep the take, unchecked
                log.warning("the take was not checked: %s", getattr(exc, "message", exc), exc_info=True)
                plan = replace(plan, quality="off", note=UNCHECKED)
        if first:
            sentences = [renumbered(s, first) for s in sentences]
        # The saved take joins the sentences exactly as stored (16-bit), as a later re-take of one
        # sentence rebuilds it: then the other sentences, and a restored take, stay byte-identical.
        assembler = joined([stored(s.result) for s in sentences], done)
        if cancel is not None and cancel.is_set():  # cancelled while the sentences were checked
            raise Cancelled("Generation cancelled.")
        yield JobProgress("saving", len(sentences), len(sentences))
        return self.save(plan, assembler, sentences)

    def start(self, request: GenerationRequest, stream: bool = True, cancel: threading.Event | None = None) -> Job:
        """Start a take on a thread of its own; validation errors are raised here, at once, and the
        job makes the plan checked here (it is not planned a second time on the job's thread)."""
        plan = self.plan(request, stream)
        return Job(lambda event: self.make(plan, stream, event), cancel)

    def run(self, request: GenerationRequest, cancel: threading.Event | None = None) -> Generation:
        """Make a take on the caller's thread and return the saved record."""
        for event in self.events(request, stream=False, cancel=cancel):
            if isinstance(event, JobDone):
                return event.generation
        raise RuntimeError("the take ended without being saved")  # pragma: no cover

    # ---- several takes of one voice, batched ------------------------------------------------------
    def batch_rows(self) -> int:
        """Chunks the backend makes together (1: it gains nothing from :meth:`group`)."""
        return batch_rows(self.studio.tts)

    @staticmethod
    def chunk_count(text: str) -> int:
        """Sentence chunks a request's text is cut into (1 for a text a request would refuse)."""
        try:
            return max(1, len(chunk_text(check_text(text), CHUNK_MAX_CHARS)))
        except InvalidInput:
            return 1

    def group(self, requests: Sequence[GenerationRequest], cancel: threading.Event | None = None,
              seed: int | None = None) -> Iterator[tuple[int, Generation | VoiceboxError]]:
        """Make several takes of one voice together; yields ``(position, take or its error)`` in
        order, each as soon as it is saved (a caller can keep it at once).

        Why: a project's blocks are mostly one short sentence chunk each, and on a CPU the engine's
        decode loop costs about the same per frame for four rows as for one (it reads the weights
        either way): eight one-chunk blocks render 2.2x faster in groups of four
        (``bench/project_render_speed.py``). So the requests' chunks go to the backend
        as one request, and each request still becomes an ordinary take: its own record, chunks,
        per-take files and quality status (the gate checks each take's sentences and re-takes a
        failing one alone, as always).

        A request that fails its checks fails alone. If the backend fails on the group, each
        request is made on its own (the failure then lands on the one it belongs to).
        ``Cancelled`` ends the group; the takes yielded before it are saved. Once the group's
        speech is made, a take without the gate is saved even if ``cancel`` is set meanwhile (its
        audio is done: the stop takes effect after the group); the gate still listens to it.

        Seeds: the group has one seed (``seed``, else a random one), recorded as each take's seed;
        each chunk records the seed of the batch it was drawn in. The rows of a batch draw from
        one random generator, so a take made in a group is reproduced by the same group (same
        texts in the same order, voice, settings and seed), not by that seed alone: a request whose
        seed must reproduce it on its own (an explicit seed) belongs in :meth:`run`.
        """
        planned: list[Plan | VoiceboxError] = []
        for request in requests:
            try:
                planned.append(self.plan(request))
            except VoiceboxError as exc:
                planned.append(exc)
        ready = [(i, p) for i, p in enumerate(planned) if isinstance(p, Plan)]
        shares: dict[int, Share] = {}
        if len(ready) > 1 and alike([p for _, p in ready]):
            try:
                shares = self._speak_together(ready, cancel, seed)
            except Cancelled:
                raise
            except Exception as exc:
                log.warning("a group of %d takes failed (%s); making them one by one", len(ready),
                            getattr(exc, "message", exc), exc_info=True)
        for position, (request, plan) in enumerate(zip(requests, planned)):
            if isinstance(plan, VoiceboxError):
                yield position, plan
                continue
            try:
                share = shares.get(position)
                if share is None:
                    made: Generation = self.run(request, cancel)
                else:
                    checking = cancel if share.plan.quality != "off" else None
                    made = drain(self.finish(share.plan, share.results, share.done, checking, share.first))
            except Cancelled:
                raise
            except VoiceboxError as exc:
                yield position, exc
                continue
            yield position, made

    def _speak_together(self, ready: list[tuple[int, Plan]], cancel: threading.Event | None,
                        seed: int | None) -> dict[int, Share]:
        """One backend request with every plan's chunks in order; each plan's share of it."""
        speech = ready[0][1].speech
        params = replace(speech.params, seed=seed).with_seed()
        together = replace(speech, chunks=tuple(c for _, p in ready for c in p.speech.chunks), params=params,
                           stream=False)
        results: dict[int, ChunkResult] = {}
        done: SpeechDone | None = None
        for event in backend_for(self.studio, together).speak(together, cancel):
            if isinstance(event, ChunkResult):
                results[event.index] = event
            elif isinstance(event, SpeechDone):
                done = event
        if done is None or sorted(results) != list(range(len(together.chunks))):
            raise RuntimeError("the backend did not make every chunk of the group")
        whole = sum(len(r.audio) for r in results.values())
        shares, start = {}, 0
        for position, plan in ready:
            mine = tuple(results[k] for k in range(start, start + len(plan.speech.chunks)))
            part = sum(len(r.audio) for r in mine) / whole if whole else 1 / len(ready)
            timings = {k: round(v * part, 4) for k, v in done.timings.items()}
            shares[position] = Share(replace(plan, speech=replace(plan.speech, params=params)), mine,
                                     replace(done, timings=timings), start)
            start += len(mine)
        return shares

    def save(self, plan: Plan, assembler: TakeAssembler, sentences: list[SentenceTakes]) -> Generation:
        """Write the audio (atomically): each take of each sentence, then the joined take, then
        the record that points at them."""
        studio = self.studio
        done: SpeechDone = assembler.done
        samples = assembler.audio()
        generation_id = new_id()
        relative = owned_path(plan.owner, f"generations/{generation_id}.wav")
        written: list[Path] = []
        try:
            chunks = []
            for sentence, placed in zip(sentences, assembler.chunks()):
                takes = []
                for number, (result, score) in enumerate(sentence.takes):
                    take_file = owned_path(plan.owner, f"generations/{generation_id}/{sentence.index}-{number}.wav")
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
                status=status, message=message, backend=getattr(backend_for(studio, plan.speech), "name", "speech"),
                quality=plan.quality, project_id=plan.project_id, owner=plan.owner, effects=plan.effects,
                instruct=plan.speech.instruct,
            )
            data = record.to_dict()
            del data["created_at"]  # the store stamps it
            return Generation.from_dict(studio.store.add_generation(data))
        except BaseException:
            for path in written:  # no orphan files if the record fails
                remove_quietly(path)
            remove_quietly_dir(owner_root(studio.settings.data_dir, plan.owner) / "generations" / generation_id)
            raise


def alike(plans: Sequence[Plan]) -> bool:
    """Plans one backend request can carry: same voice samples, language, model size and
    sampling settings (the seed aside: the group has its own)."""

    def key(plan: Plan) -> tuple:
        speech = plan.speech
        return (speech.voice, speech.speaker, speech.instruct, speech.language, speech.size,
                replace(speech.params, seed=None))

    return all(key(p) == key(plans[0]) for p in plans)


def drain(steps: Generator[object, None, T]) -> T:
    """Run a generator to its end, ignoring what it yields (progress nobody watches); its return value."""
    while True:
        try:
            next(steps)
        except StopIteration as end:
            return end.value


def renumbered(sentence: SentenceTakes, first: int) -> SentenceTakes:
    """A sentence of a group's take, numbered within its own take."""
    takes = [(replace(result, index=result.index - first), score) for result, score in sentence.takes]
    return SentenceTakes(sentence.index - first, takes, sentence.used)


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
