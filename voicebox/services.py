"""Use-cases of voicebox: the only place that combines the store, the audio pipeline and models.

The Gradio UI and the REST API are thin layers over one :class:`Studio`. Each method validates
its input, raises :class:`voicebox.errors.VoiceboxError` subclasses with messages a user can act
on, and keeps the rules about files: audio is written completely (atomically) before a record
points at it, and deleting a record deletes its audio and the cached voice prompts built from it.

**Two callers' words: ``owner`` and ``user``.** ``owner`` (:mod:`voicebox.owners`) is whose data a
call reads or changes: every method that touches a profile, sample or take takes ``owner=``
(``""``, the default, is the one local user), finds only that owner's records (another owner's id
raises the same :class:`~voicebox.errors.NotFound` as a missing one), lists only theirs, and
writes new files under their folder. ``user`` is whose *quotas* a request uses
(:meth:`voicebox.quotas.Quotas.caller`): a guest's address on a public server without accounts
(``guest:...``, who all share the local user's data) or ``None`` for work that is not a caller's
own request (a project render, a batch item). They differ, so they stay two parameters.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, audio
from .atomic import atomic_write_bytes, remove_quietly, remove_quietly_dir
from .backends import local_backend
from .batch import Batches
from .design import VoiceDesigner
from .speakers import BuiltInSpeakers
from .config import Settings
from .engines.asr import NO_SPEECH_MESSAGE
from .engines.model_lock import FairLock
from .errors import Conflict, InvalidInput, NotFound, VoiceboxError
from .generation import Takes, voice_ref
from .identity import multi_user
from .ids import new_id
from .jobs import Job
from .languages import choose as choose_language
from .languages import whisper_code
from .owners import relative as owned_path
from .owners import root as owner_root
from .projects.export_jobs import ExportJobs
from .projects.render import Renders
from .projects.service import Projects
from .quotas import SAMPLES, STORAGE, Quotas
from .records import Generation, GenerationRequest, Profile, Sample
from .sentences import SentenceEditor
from .speech import SpeechBackend, VoiceSample, model_sizes
from .store import Store

log = logging.getLogger(__name__)

#: The way forward when a sample has no automatic transcript.
TYPE_TRANSCRIPT = (
    "Type what the sample says in its Transcript box and save it; until then only the voice's timbre is used."
)
#: Why a profile cannot be made yet on a server several people use (:meth:`Studio.create_profile`).
CONSENT_NEEDED = ("Confirm that you have the speaker's permission to clone this voice (tick the permission "
                  "box; over the REST API send \"consent\": true). Every voice here needs its speaker's consent.")


class Studio:
    """All of voicebox's operations, shared by the UI and the REST API.

    Args:
        settings: configuration (data dir, models, limits).
        tts: the speech backend (default: the local Qwen3-TTS engine built from ``settings``);
            tests pass one on a tiny checkpoint, or the espeak-ng backend.
        asr: a Whisper engine (default: built from ``settings``).
        quality_gate: the per-sentence gate (default: built on first use over ``asr``).
    """

    def __init__(self, settings: Settings, tts: SpeechBackend | None = None, asr: Any | None = None,
                 quality_gate: Any | None = None) -> None:
        settings.ensure_dirs()
        self.settings = settings
        self.store = Store(settings.data_dir)
        #: Per-user limits and their usage ledger (:mod:`voicebox.quotas`).
        self.quotas = Quotas(self.store, settings)
        #: The speech backend: every model call of a take goes through its protocol.
        self.tts: SpeechBackend = tts or local_backend(settings, FairLock())
        self.model_lock = getattr(self.tts, "lock", None) or FairLock()
        if asr is None:
            from .engines.asr import WhisperEngine

            asr = WhisperEngine(
                model=settings.whisper_model, device=settings.device, cache_dir=settings.cache_dir, lock=self.model_lock
            )
        self.asr = asr
        self.takes = Takes(self)
        self.sentences = SentenceEditor(self)
        self.projects = Projects(self)
        self.renders = Renders(self.projects)
        self.exports = ExportJobs(self.projects)
        self.batches = Batches(self)
        #: Voices designed from words, waiting to be kept as profiles (:mod:`voicebox.design`).
        self.designer = VoiceDesigner(self)
        self.speakers = BuiltInSpeakers(self)  #: the CustomVoice model's named speakers
        #: Projects whose render was cut off by a restart (now paused, resumable).
        self.interrupted_renders = self.renders.recover()
        self._quality_gate: Any = quality_gate
        #: Messages the UI shows as a banner (e.g. "running on CPU", a recovered database).
        self.notices: list[str] = [m for m in [self.store.recovered_from_corruption] if m]

    # ---- profiles --------------------------------------------------------------------------
    def create_profile(self, name: str, description: str = "", language: str = "auto", *,
                       owner: str = "", user: str | None = None, consent: str | None = None) -> Profile:
        """``user``: who asks (see :mod:`voicebox.quotas`): refused over their profile limit, and
        the profile counts as theirs; ``None`` counts nothing. The name is unique per owner.
        ``consent``: when the person confirmed they have the speaker's permission (recorded), ``""``
        for a profile restored from an archive made where no one was asked; ``None`` is refused
        where several people keep libraries (:func:`voicebox.identity.multi_user`)."""
        if consent is None and multi_user(self.settings):
            raise InvalidInput(CONSENT_NEEDED)
        language = self._check_language(language)
        with self.quotas.new_profile(user) as made:
            record = self.store.create_profile(name, description, language, owner=owner, consented_at=consent or "")
            made.profile_id = record["id"]
        return Profile.from_dict(record)

    def list_profiles(self, search: str | None = None, limit: int | None = None, offset: int = 0, *,
                      owner: str = "") -> dict[str, Any]:
        """``{"items": [Profile], "total": n}`` of ``owner``'s profiles; each counts its samples."""
        items, total = self.store.list_profiles(search, limit, offset, owner=owner)
        profiles = [
            Profile.from_dict(dict(item, sample_count=len(self.store.list_samples(item["id"])))) for item in items
        ]
        return {"items": profiles, "total": total}

    def get_profile(self, profile_id: str, *, owner: str = "") -> Profile:
        """A profile with its samples."""
        profile = self.store.get_profile(profile_id, owner)
        samples = self.store.list_samples(profile_id, owner)
        return Profile.from_dict(dict(profile, samples=samples, sample_count=len(samples)))

    def find_profile(self, id_or_name: str, *, owner: str = "") -> Profile:
        """One of ``owner``'s profiles by id or case-insensitive name: what OpenAI-style clients
        call a voice."""
        return Profile.from_dict(self.store.find_profile(id_or_name, owner))

    def update_profile(self, profile_id: str, *, owner: str = "", **changes: Any) -> Profile:
        if changes.get("language") is not None:
            changes["language"] = self._check_language(changes["language"])
        return Profile.from_dict(self.store.update_profile(profile_id, owner, **changes))

    def delete_profile(self, profile_id: str, *, owner: str = "") -> None:
        """Deletes the profile, its samples and their cached prompts; history keeps the name."""
        removed = self.store.delete_profile(profile_id, owner)
        self._forget_samples([s["sha256"] for s in removed["deleted_samples"]])
        remove_quietly_dir(owner_root(self.settings.data_dir, owner) / "samples" / profile_id)

    def _check_language(self, language: str | None) -> str:
        return choose_language(language, self.tts.languages())

    # ---- samples ---------------------------------------------------------------------------
    def add_sample(
        self, profile_id: str, data: bytes | str | Path, reference_text: str | None = None, *,
        owner: str = "", user: str | None = None,
    ) -> Sample:
        """Validate, clean, store and (when no transcript is given) transcribe a voice sample.

        Args:
            data: the uploaded bytes, or a path to them (e.g. a Gradio temp file).
            reference_text: what the sample says; ``None`` or blank means transcribe it.
            user: who asks; refused over their samples-per-profile or storage limit before the
                sample is transcribed (``None``: no quota).
        """
        profile = self.store.get_profile(profile_id, owner)
        if user is not None:
            self.quotas.check(user, SAMPLES, profile_id=profile_id)
        raw = audio.read_upload(data, self.settings.max_upload_bytes)
        decoded, rate = audio.decode(raw)
        prepared = audio.prepare_reference(decoded, rate, self.settings.max_sample_seconds)
        wav = audio.wav_bytes(prepared.samples, prepared.sample_rate)
        digest = audio.sha256_bytes(wav)
        if user is not None:
            self.quotas.check(user, STORAGE, len(wav))
        if any(s["sha256"] == digest for s in self.store.list_samples(profile_id)):
            raise Conflict("This recording is already in the profile.")
        warnings = list(prepared.warnings)
        text = (reference_text or "").strip()
        if not text:
            text, note = self._auto_transcript(prepared.samples, profile.get("language"))
            if note:
                warnings.append(note)
        sample_id = new_id()
        relative = owned_path(owner, f"samples/{profile_id}/{sample_id}.wav")
        atomic_write_bytes(self.settings.data_dir / relative, wav)
        try:
            return Sample.from_dict(self.store.add_sample(
                profile_id, relative, text, prepared.duration, prepared.sample_rate, digest,
                sample_id=sample_id, warnings=warnings, owner=owner,
            ))
        except BaseException:
            remove_quietly(self.settings.data_dir / relative)  # no orphan file if the record fails
            raise

    def _auto_transcript(self, samples_24k: np.ndarray, language: str | None) -> tuple[str, str]:
        """Whisper transcript of a cleaned sample; on failure, an empty text and a note."""
        speech = audio.resample(samples_24k, audio.MODEL_SAMPLE_RATE, audio.WHISPER_SAMPLE_RATE)
        try:
            result = self.asr.transcribe(speech, language=whisper_code(language))
        except InvalidInput as exc:  # no speech heard, or a language this Whisper cannot read
            reason = "Whisper heard no words in this sample." if exc.message == NO_SPEECH_MESSAGE else exc.message
            return "", f"{reason.rstrip('.')}. {TYPE_TRANSCRIPT}"
        except VoiceboxError as exc:  # the model itself is unavailable: its message may name server paths
            log.warning("automatic transcription failed: %s", exc.message)
            return "", f"Whisper is not available right now (see the Models tab). {TYPE_TRANSCRIPT}"
        return result.text.strip(), ""

    def list_samples(self, profile_id: str, *, owner: str = "") -> list[Sample]:
        return [Sample.from_dict(s) for s in self.store.list_samples(profile_id, owner)]

    def update_sample_text(self, sample_id: str, reference_text: str, *, owner: str = "") -> Sample:
        before = self.store.get_sample(sample_id, owner)
        sample = self.store.update_sample_text(sample_id, reference_text, owner)
        if before["reference_text"] != sample["reference_text"]:
            self._forget_samples([sample["sha256"]])
        return Sample.from_dict(sample)

    def delete_sample(self, sample_id: str, *, owner: str = "") -> None:
        sample = self.store.delete_sample(sample_id, owner)
        self._forget_samples([sample["sha256"]])

    def sample_path(self, sample_id: str, *, owner: str = "") -> Path:
        return self._existing_file(self.store.get_sample(sample_id, owner)["file"], owner)

    # ---- generation ------------------------------------------------------------------------
    def generate(self, request: GenerationRequest, cancel: threading.Event | None = None, *,
                 owner: str = "", user: str | None = None) -> Generation:
        """Speak ``request.text`` with one of ``owner``'s profiles, save the audio and a history
        record (``owner``'s; it replaces whatever owner ``request`` carried).

        ``user``: who asks (an account, a guest, ``""`` for the one user; see
        :mod:`voicebox.quotas`): the take is refused over their quotas (``QuotaExceeded``) before
        it starts, counted, and waits for the model in their lane. ``None`` (a project render,
        a batch item; the batch route counts a batch when it accepts it) counts nothing.
        """
        request = request.with_changes(owner=owner)
        if user is None:
            return self.takes.run(request, cancel)
        reservation = self.quotas.reserve_take(user, request.text)
        with reservation.running():
            return reservation.done(self.takes.run(request, cancel))

    def check_generation(self, request: GenerationRequest, *, owner: str = "", user: str | None = None) -> None:
        """Refuse a request that :meth:`generate` would refuse, without waiting for the model.

        The UI calls this before it shows a take as started, so a mistake (no text, no samples,
        a bad seed) or a quota (``user``) is answered at once, even while another take holds the
        model.
        """
        self.takes.plan(request.with_changes(owner=owner))
        if user is not None:
            self.quotas.check_take(user, request.text)

    def start_generation(self, request: GenerationRequest, stream: bool = True,
                         cancel: threading.Event | None = None, *, owner: str = "",
                         user: str | None = None) -> Job:
        """Start a take on a thread of its own and return its :class:`~voicebox.jobs.Job`
        (events: progress, audio while streaming, chunks, then the saved record or the error).
        A request that fails validation or a quota (``user``, as in :meth:`generate`) raises
        here, before any job exists."""
        request = request.with_changes(owner=owner)
        if user is None:
            return self.takes.start(request, stream, cancel)
        plan = self.takes.plan(request, stream)  # a mistake is refused before it is counted
        reservation = self.quotas.reserve_take(user, request.text)
        return Job(lambda event: reservation.events(self.takes.make(plan, stream, event)), cancel)

    def references(self, profile_id: str, *, owner: str = "") -> list[VoiceSample]:
        """One of ``owner``'s profiles' samples in stable order, as a speech backend needs them."""
        samples = self.store.list_samples(profile_id, owner)
        if not samples:
            raise InvalidInput("This profile has no samples yet. Add a recording on the Profiles tab first.")
        return [VoiceSample(self._existing_file(s["file"], owner), s["sha256"], s.get("reference_text", ""))
                for s in samples]

    def model_sizes(self) -> list[str]:
        """The model sizes the speech backend offers."""
        return model_sizes(self.tts)

    def default_size(self) -> str:
        """The size a request without one uses: the loaded model's, else the smallest."""
        return self.tts.loaded_size or self.model_sizes()[0]

    def languages(self) -> list[str]:
        return list(self.tts.languages())

    def check_size(self, size: str | None) -> str:
        if size in (None, ""):
            return self.default_size()
        wanted = str(size).strip().upper().removesuffix("B")
        sizes = self.model_sizes()
        match = next((s for s in sizes if s.upper().removesuffix("B") == wanted), None)
        if match is None:
            raise InvalidInput(f"Model size {size!r} is not available; use one of {', '.join(sizes)}.")
        return match

    # ---- history ---------------------------------------------------------------------------
    def list_history(
        self, search: str | None = None, profile_id: str | None = None, limit: int | None = 50, offset: int = 0,
        *, owner: str = "",
    ) -> dict[str, Any]:
        """``owner``'s takes, newest first (the store's owner index: no scan of anyone else's)."""
        items, total = self.store.list_generations(search, profile_id or None, limit, offset, owner=owner)
        return {"items": [Generation.from_dict(item) for item in items], "total": total}

    def get_generation(self, generation_id: str, *, owner: str = "") -> Generation:
        return Generation.from_dict(self.store.get_generation(generation_id, owner))

    def delete_generation(self, generation_id: str, *, owner: str = "") -> None:
        """Deletes the record, its audio and every sentence take's audio (after any edit of it)."""
        with self.sentences.lock:
            record = Generation.from_dict(self.store.delete_generation(generation_id, owner))
        for chunk in record.chunks:
            for take in chunk.takes:
                if take.file:
                    with contextlib.suppress(NotFound):
                        remove_quietly(self.store.resolve_file(take.file, record.owner))
        remove_quietly_dir(owner_root(self.settings.data_dir, record.owner) / "generations" / record.id)

    def retake_sentence(self, generation_id: str, index: Any, text: str | None = None, seed: Any = None, *,
                        owner: str = "", **sampling: Any) -> Generation:
        """A new take of one sentence of a saved take (see :mod:`voicebox.sentences`)."""
        return self.sentences.retake(generation_id, index, text, seed, owner=owner, **sampling)

    def choose_take(self, generation_id: str, index: Any, take: Any, *, owner: str = "") -> Generation:
        """Use another take of one sentence; the joined audio is rebuilt, nothing is deleted."""
        return self.sentences.choose(generation_id, index, take, owner=owner)

    def score_clip(self, data: bytes | str | Path, text: str, profile_id: str | None = None,
                   language: str | None = None, *, owner: str = "") -> dict[str, Any]:
        """The quality gate's checks on any clip: each check's number by name (``cer``,
        ``similarity`` (only with a profile), ...), then ``checks``, ``passed``, ``score``, ``heard``."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("Type the words the clip should say.")
        raw = audio.read_upload(data, self.settings.max_upload_bytes)
        voice = None
        if profile_id:
            profile = self.get_profile(profile_id, owner=owner)
            language = language or profile.language
            voice = voice_ref(tuple(self.references(profile_id, owner=owner)))
        score = self.quality_gate().score_file(raw, text.strip(), language, voice)
        return {**score.values(), **score.to_dict()}

    def _forget_samples(self, sample_hashes: list[str]) -> None:
        """Samples changed or went: drop the voice prompts and gate measurements built from them."""
        self.tts.forget_voices(sample_hashes)
        if self._quality_gate is not None:
            self._quality_gate.forget(sample_hashes)

    def quality_gate(self) -> Any:
        """The per-sentence quality gate (:mod:`voicebox.quality`), built on first use: it shares
        this studio's Whisper engine and loads the speaker encoder once."""
        if self._quality_gate is None:
            from .quality import QualityGate

            self._quality_gate = QualityGate(self.asr)
        return self._quality_gate

    def history_stats(self, *, owner: str = "") -> dict[str, Any]:
        return self.store.generation_stats(owner)

    def generation_path(self, generation_id: str, *, owner: str = "") -> Path:
        return self._existing_file(self.store.get_generation(generation_id, owner)["file"], owner)

    def take_file(self, record: Generation) -> Path:
        """The audio of a take already read, checked as :meth:`generation_path` checks it."""
        return self._existing_file(record.file, record.owner)

    def generation_audio(self, generation_id: str, fmt: str = "wav", *, owner: str = "") -> tuple[bytes, str]:
        """A generation's audio in ``fmt`` (wav is served as stored)."""
        path = self.generation_path(generation_id, owner=owner)
        if fmt.lower() == "wav":
            return path.read_bytes(), "audio/wav"
        samples = audio.load_mono(path, audio.MODEL_SAMPLE_RATE)
        return audio.encode(samples, audio.MODEL_SAMPLE_RATE, fmt)

    def _existing_file(self, relative: str | None, owner: str) -> Path:
        """A record's file, which must lie in ``owner``'s folder."""
        path = self.store.resolve_file(relative or "", owner)
        if not path.is_file():
            raise NotFound("The audio file for this item is missing from the data directory.")
        return path

    # ---- transcription ---------------------------------------------------------------------
    def transcribe(self, data: bytes | str | Path, language: str | None = None) -> dict[str, Any]:
        """Whisper speech-to-text for any clip (any length, any supported format). Its cache is
        keyed by the clip's bytes, so a hit is the transcript of the caller's own upload (see
        :mod:`voicebox.owners`): it needs no owner."""
        raw = audio.read_upload(data, self.settings.max_upload_bytes)
        speech = audio.load_mono(raw, audio.WHISPER_SAMPLE_RATE)
        result = self.asr.transcribe(speech, language=whisper_code(language), sha256=audio.sha256_bytes(raw))
        return result.to_dict()

    # ---- models ----------------------------------------------------------------------------
    def load_model(self, model: str, size: str | None = None) -> dict[str, Any]:
        if model == "tts":
            self.tts.load(self.check_size(size))
        elif model == "whisper":
            self.asr.load()
        else:
            raise InvalidInput(f"Unknown model {model!r}; use 'tts' or 'whisper'.")
        return self.model_status()

    def unload_model(self, model: str) -> dict[str, Any]:
        if model == "tts":
            self.tts.unload()
        elif model == "whisper":
            self.asr.unload()
        else:
            raise InvalidInput(f"Unknown model {model!r}; use 'tts' or 'whisper'.")
        return self.model_status()

    def model_status(self) -> dict[str, Any]:
        return {"tts": self.tts.status(), "whisper": self.asr.status(), "prompt_cache": self.tts.voice_cache_stats()}

    def clear_prompt_cache(self) -> dict[str, Any]:
        return self.tts.clear_voices()

    def health(self) -> dict[str, Any]:
        tts, whisper = self.tts.status(), self.asr.status()
        return {
            "status": "ok",
            "version": __version__,
            "tts_loaded": tts["loaded"],
            "tts_model": tts["model"],
            "tts_size": tts["size"],
            "device": tts["device"],
            "engine": tts.get("engine"),
            "engine_why": tts.get("why") or tts.get("notice") or "",
            "precision": tts.get("quant") or tts.get("linear_precision"),
            "precision_why": tts.get("precision_why"),
            "whisper_loaded": whisper.get("loaded", False),
            "database_recovered": self.store.recovered_from_corruption,
            # the remote backend's vLLM-Omni servers and their state (URLs, never the key)
            **({"servers": tts["servers"]} if tts.get("servers") is not None else {}),
        }
