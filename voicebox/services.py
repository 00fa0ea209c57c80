"""Use-cases of voicebox: the only place that combines the store, the audio pipeline and models.

The Gradio UI and the REST API are thin layers over one :class:`Studio`. Each method validates
its input, raises :class:`voicebox.errors.VoiceboxError` subclasses with messages a user can act
on, and keeps the rules about files: audio is written completely (atomically) before a record
points at it, and deleting a record deletes its audio and the cached voice prompts built from it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from . import __version__, audio
from .atomic import atomic_write_bytes, remove_quietly
from .config import Settings
from .engines.asr import NO_SPEECH_MESSAGE
from .engines.params import GenerationParams, check_text, make_params
from .engines.prompt_cache import PromptCache
from .engines.tts import SIZES, ReferenceSample, SynthesisResult, TTSEngine
from .errors import Conflict, InvalidInput, NotFound, VoiceboxError
from .store import Store, new_id

log = logging.getLogger(__name__)

#: Whisper language codes for the languages a profile can be set to.
WHISPER_CODES = {
    "english": "en", "chinese": "zh", "japanese": "ja", "korean": "ko", "german": "de",
    "french": "fr", "russian": "ru", "portuguese": "pt", "spanish": "es", "italian": "it",
}

ProgressFn = Callable[[str, int, int], None]
#: The way forward when a sample has no automatic transcript.
TYPE_TRANSCRIPT = (
    "Type what the sample says in its Transcript box and save it; until then only the voice's timbre is used."
)


@dataclass
class StreamUpdate:
    """Audio to play now; the final update also carries the saved history ``record``."""

    audio: np.ndarray
    record: dict[str, Any] | None = None


@dataclass
class _GenerationJob:
    profile: dict[str, Any]
    text: str
    references: list[ReferenceSample]
    language: str | None
    size: str
    params: GenerationParams
    progress: ProgressFn | None
    cancel: threading.Event | None


def whisper_language(language: str | None) -> str | None:
    """Profile/UI language name (or an ISO code) -> Whisper code; ``None`` for auto."""
    if not language or language.strip().lower() in ("auto", ""):
        return None
    value = language.strip().lower()
    return WHISPER_CODES.get(value, value if len(value) in (2, 3) else None)


class Studio:
    """All of voicebox's operations, shared by the UI and the REST API.

    Args:
        settings: configuration (data dir, models, limits).
        tts: a TTS engine (default: built from ``settings``); tests pass one on a tiny checkpoint.
        asr: a Whisper engine (default: built from ``settings``).
    """

    def __init__(self, settings: Settings, tts: TTSEngine | None = None, asr: Any | None = None) -> None:
        settings.ensure_dirs()
        self.settings = settings
        self.store = Store(settings.data_dir)
        self.model_lock = threading.RLock()
        self.tts = tts or TTSEngine(
            {size: model for size, model in (("0.6B", settings.tts_model), ("1.7B", settings.tts_model_large)) if model},
            device=settings.device,
            lock=self.model_lock,
            prompt_cache=PromptCache(settings.cache_dir / "prompts"),
            max_frames=settings.max_frames,
            quantize=settings.cpu_int8,
            cuda_graphs=settings.cuda_graphs,
        )
        if asr is None:
            from .engines.asr import WhisperEngine

            asr = WhisperEngine(
                model=settings.whisper_model, device=settings.device, cache_dir=settings.cache_dir, lock=self.tts.lock
            )
        self.asr = asr
        #: Messages the UI shows as a banner (e.g. "running on CPU", a recovered database).
        self.notices: list[str] = [m for m in [self.store.recovered_from_corruption] if m]
        #: The GPU-bound calls. On Hugging Face ZeroGPU they are replaced by pure wrappers that run
        #: in a GPU worker (see :mod:`voicebox.hf_spaces`); everything else stays in this process.
        self.synthesize = self.tts.synthesize
        self.stream = self.tts.stream

    # ---- profiles --------------------------------------------------------------------------
    def create_profile(self, name: str, description: str = "", language: str = "auto") -> dict[str, Any]:
        return self.store.create_profile(name, description, self._check_language(language))

    def list_profiles(self, search: str | None = None, limit: int | None = None, offset: int = 0) -> dict[str, Any]:
        items, total = self.store.list_profiles(search, limit, offset)
        for item in items:
            item["sample_count"] = len(self.store.list_samples(item["id"]))
        return {"items": items, "total": total}

    def get_profile(self, profile_id: str) -> dict[str, Any]:
        profile = self.store.get_profile(profile_id)
        profile["samples"] = self.store.list_samples(profile_id)
        return profile

    def find_profile(self, id_or_name: str) -> dict[str, Any]:
        """A profile by id or case-insensitive name: what OpenAI-style clients call a voice."""
        return self.store.find_profile(id_or_name)

    def update_profile(self, profile_id: str, **changes: Any) -> dict[str, Any]:
        if changes.get("language") is not None:
            changes["language"] = self._check_language(changes["language"])
        return self.store.update_profile(profile_id, **changes)

    def delete_profile(self, profile_id: str) -> None:
        """Deletes the profile, its samples and their cached prompts; history keeps the name."""
        removed = self.store.delete_profile(profile_id)
        self.tts.prompt_cache.invalidate_samples(s["sha256"] for s in removed["deleted_samples"])
        remove_quietly_dir(self.settings.samples_dir / profile_id)

    def _check_language(self, language: str | None) -> str:
        value = (language or "auto").strip()
        allowed = {name.lower(): name for name in self.tts.languages()}
        if value.lower() not in allowed:
            raise InvalidInput(f"Language {value!r} is not supported; use one of {', '.join(allowed.values())}.")
        return "auto" if value.lower() == "auto" else allowed[value.lower()]

    # ---- samples ---------------------------------------------------------------------------
    def add_sample(
        self, profile_id: str, data: bytes | str | Path, reference_text: str | None = None
    ) -> dict[str, Any]:
        """Validate, clean, store and (when no transcript is given) transcribe a voice sample.

        Args:
            data: the uploaded bytes, or a path to them (e.g. a Gradio temp file).
            reference_text: what the sample says; ``None`` or blank means transcribe it.
        """
        profile = self.store.get_profile(profile_id)
        raw = self._read_upload(data)
        decoded, rate = audio.decode(raw)
        prepared = audio.prepare_reference(decoded, rate, self.settings.max_sample_seconds)
        wav = audio.wav_bytes(prepared.samples, prepared.sample_rate)
        digest = audio.sha256_bytes(wav)
        if any(s["sha256"] == digest for s in self.store.list_samples(profile_id)):
            raise Conflict("This recording is already in the profile.")
        warnings = list(prepared.warnings)
        text = (reference_text or "").strip()
        if not text:
            text, note = self._auto_transcript(prepared.samples, profile.get("language"))
            if note:
                warnings.append(note)
        sample_id = new_id()
        relative = f"samples/{profile_id}/{sample_id}.wav"
        atomic_write_bytes(self.settings.data_dir / relative, wav)
        try:
            return self.store.add_sample(
                profile_id, relative, text, prepared.duration, prepared.sample_rate, digest,
                sample_id=sample_id, warnings=warnings,
            )
        except BaseException:
            remove_quietly(self.settings.data_dir / relative)  # no orphan file if the record fails
            raise

    def _read_upload(self, data: bytes | str | Path) -> bytes:
        if isinstance(data, (str, Path)):
            path = Path(data)
            if not path.is_file():
                raise InvalidInput("No file was uploaded.")
            audio.check_upload_size(path.stat().st_size, self.settings.max_upload_bytes)
            return path.read_bytes()
        audio.check_upload_size(len(data), self.settings.max_upload_bytes)
        return data

    def _auto_transcript(self, samples_24k: np.ndarray, language: str | None) -> tuple[str, str]:
        """Whisper transcript of a cleaned sample; on failure, an empty text and a note."""
        speech = audio.resample(samples_24k, audio.MODEL_SAMPLE_RATE, audio.WHISPER_SAMPLE_RATE)
        try:
            result = self.asr.transcribe(speech, language=whisper_language(language))
        except InvalidInput as exc:  # no speech heard, or a language this Whisper cannot read
            reason = "Whisper heard no words in this sample." if exc.message == NO_SPEECH_MESSAGE else exc.message
            return "", f"{reason.rstrip('.')}. {TYPE_TRANSCRIPT}"
        except VoiceboxError as exc:  # the model itself is unavailable: its message may name server paths
            log.warning("automatic transcription failed: %s", exc.message)
            return "", f"Whisper is not available right now (see the Models tab). {TYPE_TRANSCRIPT}"
        return result.text.strip(), ""

    def list_samples(self, profile_id: str) -> list[dict[str, Any]]:
        return self.store.list_samples(profile_id)

    def update_sample_text(self, sample_id: str, reference_text: str) -> dict[str, Any]:
        before = self.store.get_sample(sample_id)
        sample = self.store.update_sample_text(sample_id, reference_text)
        if before["reference_text"] != sample["reference_text"]:
            self.tts.prompt_cache.invalidate_samples([sample["sha256"]])
        return sample

    def delete_sample(self, sample_id: str) -> None:
        sample = self.store.delete_sample(sample_id)
        self.tts.prompt_cache.invalidate_samples([sample["sha256"]])

    def sample_path(self, sample_id: str) -> Path:
        return self._existing_file(self.store.get_sample(sample_id))

    # ---- generation ------------------------------------------------------------------------
    def generate(self, profile_id: str, text: str, **options: Any) -> dict[str, Any]:
        """Speak ``text`` with a profile's voice, save the audio and a history record.

        ``options``: language, model_size, preset, seed, temperature, top_k, top_p,
        repetition_penalty, max_new_tokens, progress, cancel.
        """
        job = self._generation_job(profile_id, text, **options)
        result = self.synthesize(job.text, job.references, job.language, job.size, job.params,
                                 progress=job.progress, cancel=job.cancel)
        return self.save_generation(job.profile, job.text, result)

    def check_generation(self, profile_id: str, text: str, **options: Any) -> None:
        """Refuse a request that :meth:`generate` would refuse, without waiting for the model.

        The UI calls this before it shows a take as started, so a mistake (no text, no samples,
        a bad seed) is answered at once, even while another take holds the model.
        """
        self._generation_job(profile_id, text, **options)

    def generate_stream(self, profile_id: str, text: str, **options: Any) -> Iterator[StreamUpdate]:
        """Like :meth:`generate`, yielding audio while it is produced; the last update carries
        the saved history record (the whole take is saved, as with :meth:`generate`)."""
        job = self._generation_job(profile_id, text, **options)
        for piece in self.stream(job.text, job.references, job.language, job.size, job.params,
                                 progress=job.progress, cancel=job.cancel):
            if piece.result is None:
                yield StreamUpdate(piece.audio)
            else:
                yield StreamUpdate(piece.audio, self.save_generation(job.profile, job.text, piece.result))

    def _generation_job(
        self,
        profile_id: str,
        text: str,
        language: str | None = None,
        model_size: str | None = None,
        preset: str | None = None,
        seed: int | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        repetition_penalty: float | None = None,
        max_new_tokens: int | None = None,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> "_GenerationJob":
        """Validate everything before any model work starts."""
        text = check_text(text)
        size = self._check_size(model_size)
        params = make_params(
            preset, temperature=temperature, top_k=top_k, top_p=top_p,
            repetition_penalty=repetition_penalty, seed=seed, max_new_tokens=max_new_tokens,
        )
        profile = self.store.get_profile(profile_id)
        references = self.references(profile_id)
        chosen = language if language not in (None, "") else profile.get("language", "auto")
        return _GenerationJob(profile, text, references, chosen, size, params, progress, cancel)

    def references(self, profile_id: str) -> list[ReferenceSample]:
        """A profile's samples in stable order, as the engine needs them."""
        samples = self.store.list_samples(profile_id)
        if not samples:
            raise InvalidInput("This profile has no samples yet. Add a recording on the Profiles tab first.")
        return [ReferenceSample(self._existing_file(s), s["sha256"], s.get("reference_text", "")) for s in samples]

    def save_generation(self, profile: dict[str, Any], text: str, result: SynthesisResult) -> dict[str, Any]:
        """Write the audio (atomically), then the record that points at it."""
        generation_id = new_id()
        relative = f"generations/{generation_id}.wav"
        atomic_write_bytes(self.settings.data_dir / relative, audio.wav_bytes(result.audio, result.sample_rate))
        meta = result.metadata()
        record = {
            "id": generation_id,
            "profile_id": profile["id"],
            "profile_name": profile["name"],
            "text": text,
            "language": meta["language"],
            "model": meta["model"],
            "size": meta["size"],
            "mode": meta["mode"],
            "params": meta["params"],
            "seed": meta["seed"],
            "duration": meta["duration"],
            "file": relative,
            "timings": meta["timings"],
            "cache_hit": meta["cache_hit"],
            "chunks": meta["chunks"],
            "status": meta["status"],
            "message": meta["message"],
        }
        try:
            return self.store.add_generation(record)
        except BaseException:
            remove_quietly(self.settings.data_dir / relative)
            raise

    def _check_size(self, size: str | None) -> str:
        if size in (None, ""):
            return self.tts.loaded_size or SIZES[0]
        wanted = str(size).strip().upper().removesuffix("B")
        match = next((s for s in self.tts.models if s.upper().removesuffix("B") == wanted), None)
        if match is None:
            raise InvalidInput(f"Model size {size!r} is not available; use one of {', '.join(self.tts.models)}.")
        return match

    # ---- history ---------------------------------------------------------------------------
    def list_history(
        self, search: str | None = None, profile_id: str | None = None, limit: int | None = 50, offset: int = 0
    ) -> dict[str, Any]:
        items, total = self.store.list_generations(search, profile_id or None, limit, offset)
        return {"items": items, "total": total}

    def get_generation(self, generation_id: str) -> dict[str, Any]:
        return self.store.get_generation(generation_id)

    def delete_generation(self, generation_id: str) -> None:
        self.store.delete_generation(generation_id)

    def history_stats(self) -> dict[str, Any]:
        return self.store.generation_stats()

    def generation_path(self, generation_id: str) -> Path:
        return self._existing_file(self.store.get_generation(generation_id))

    def generation_audio(self, generation_id: str, fmt: str = "wav") -> tuple[bytes, str]:
        """A generation's audio in ``fmt`` (wav is served as stored)."""
        path = self.generation_path(generation_id)
        if fmt.lower() == "wav":
            return path.read_bytes(), "audio/wav"
        samples = audio.load_mono(path, audio.MODEL_SAMPLE_RATE)
        return audio.encode(samples, audio.MODEL_SAMPLE_RATE, fmt)

    def _existing_file(self, record: dict[str, Any]) -> Path:
        path = self.store.resolve_file(record.get("file") or "")
        if not path.is_file():
            raise NotFound("The audio file for this item is missing from the data directory.")
        return path

    # ---- transcription ---------------------------------------------------------------------
    def transcribe(self, data: bytes | str | Path, language: str | None = None) -> dict[str, Any]:
        """Whisper speech-to-text for any clip (any length, any supported format)."""
        raw = self._read_upload(data)
        speech = audio.load_mono(raw, audio.WHISPER_SAMPLE_RATE)
        result = self.asr.transcribe(speech, language=whisper_language(language), sha256=audio.sha256_bytes(raw))
        return result.to_dict()

    # ---- models ----------------------------------------------------------------------------
    def load_model(self, model: str, size: str | None = None) -> dict[str, Any]:
        if model == "tts":
            self.tts.load(self._check_size(size))
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
        return {"tts": self.tts.status(), "whisper": self.asr.status(), "prompt_cache": self.tts.prompt_cache.stats()}

    def clear_prompt_cache(self) -> dict[str, Any]:
        self.tts.prompt_cache.clear()
        return self.tts.prompt_cache.stats()

    def health(self) -> dict[str, Any]:
        tts, whisper = self.tts.status(), self.asr.status()
        return {
            "status": "ok",
            "version": __version__,
            "tts_loaded": tts["loaded"],
            "tts_model": tts["model"],
            "tts_size": tts["size"],
            "device": tts["device"],
            "whisper_loaded": whisper.get("loaded", False),
            "database_recovered": self.store.recovered_from_corruption,
        }


def remove_quietly_dir(directory: Path) -> None:
    """Remove an (expected empty) per-profile sample folder; leftovers are kept, not forced."""
    try:
        for leftover in directory.glob(".*.tmp"):
            remove_quietly(leftover)
        directory.rmdir()
    except OSError:
        pass
