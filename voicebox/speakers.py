"""Built-in voices: the named speakers of Qwen3-TTS's CustomVoice model, with style control (issue #18).

They stand beside a person's profiles (marked built-in, needing no samples) wherever a voice is
chosen: the Generate tab, REST ``profile_id``, the OpenAI route's ``voice``, projects and batches.
A built-in voice's id is ``speaker:<name>`` (:func:`voice_id`); its takes are saved like any take.
Unlike a cloned voice, a built-in speaker takes a style instruction ("whispering", "excited,
faster"); the 0.6B CustomVoice model ignores instructions, so one sent to it is refused
(:class:`~voicebox.engines.prompt_builders.CustomVoiceBuilder`), and one sent with a cloned voice
is refused here (:data:`CLONES_TAKE_NO_STYLE`): an instruction is never dropped without a word.

The model (``VOICEBOX_SPEAKER_MODEL``) is loaded on first use by its own engine. One big model is
kept in memory at a time (:func:`backend_for` unloads the others before a take moves between
them). Speaker names come from the checkpoint's ``config.json`` when it is on disk (a local
directory or the Hugging Face cache), else from the released model's list, so the voices can be
shown before anything is downloaded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .engines.tts import TTSEngine
from .errors import InvalidInput, NotFound
from .records import Profile
from .speech import SpeechBackend, SpeechRequest

PREFIX = "speaker:"
#: The named speakers of the released Qwen3-TTS CustomVoice models, as their model card lists them.
RELEASED = ("aiden", "dylan", "eric", "ono_anna", "ryan", "serena", "sohee", "uncle_fu", "vivian")
CLONES_TAKE_NO_STYLE = ("Cloned voices do not take style instructions (the cloning model has no way to follow "
                        "them): clear the instruction, or choose a built-in speaker.")
_NAME = re.compile(r"[a-z0-9_]{1,40}")


class SpeakerEngine(TTSEngine):
    """The speech engine over a CustomVoice checkpoint (it refuses any other family)."""

    name = "qwen3-tts-custom-voice"
    variant = "custom_voice"


def voice_id(name: str) -> str:
    return PREFIX + name.lower()


def is_speaker(voice: Any) -> bool:
    return isinstance(voice, str) and voice.lower().startswith(PREFIX)


def label(name: str) -> str:
    """How a speaker is shown: ``uncle_fu`` → ``Uncle Fu``."""
    return name.replace("_", " ").title()


def size_of(source: str) -> str:
    """The size key a checkpoint is known by (its id or folder names 0.6B, else 1.7B)."""
    return "0.6B" if "0.6b" in source.lower() else "1.7B"


class BuiltInSpeakers:
    """The CustomVoice engine of a studio and the voices it offers (none when not configured)."""

    def __init__(self, studio: Any, engine: TTSEngine | None = None) -> None:
        self.studio = studio
        settings = studio.settings
        source = settings.speaker_model
        self.source = source
        self.engine = engine if engine is not None else (
            SpeakerEngine({size_of(source): source}, device=settings.device, lock=studio.model_lock,
                          max_frames=settings.max_frames, quantize=settings.cpu_int8, cuda_graphs="off",
                          precision_memory=settings.precision_memory)
            if source else None)

    @property
    def available(self) -> bool:
        return self.engine is not None

    @property
    def size(self) -> str:
        return size_of(self.source)

    @property
    def takes_style(self) -> bool:
        """Whether the model follows style instructions (the 0.6B CustomVoice model does not): its
        config says, when on disk; else its name."""
        if not self.available:
            return False
        config = _config_on_disk(self.source)
        if config is not None and config.get("tts_model_size"):
            return str(config["tts_model_size"]) != "0b6"
        return self.size != "0.6B"

    def names(self) -> list[str]:
        """The speakers, lower-case, sorted: from the loaded model, its config on disk, or the release."""
        if self.engine is None:
            return []
        model = getattr(self.engine, "_model", None)
        if model is not None:
            return sorted(s.lower() for s in (model.get_supported_speakers() or []))
        config = _config_on_disk(self.source)
        if config is not None:
            return sorted(str(s).lower() for s in (config.get("talker_config", {}).get("spk_id") or {}))
        return list(RELEASED)

    def profiles(self) -> list[Profile]:
        """The built-in voices as profile records (no samples, no owner, never stored)."""
        return [Profile(id=voice_id(n), name=label(n), description="Built-in voice", language="auto")
                for n in self.names()]

    def profile(self, voice: str) -> Profile:
        """The built-in voice ``speaker:<name>``; an unknown one answers like a missing profile."""
        name = voice[len(PREFIX):].strip().lower() if is_speaker(voice) else ""
        if not _NAME.fullmatch(name) or name not in self.names():
            raise NotFound(f"Profile {voice} does not exist.")
        return Profile(id=voice_id(name), name=label(name), description="Built-in voice", language="auto")

    def find(self, name: str) -> Profile | None:
        """A built-in voice by its name as people write it ("Vivian", "uncle fu", "speaker:ryan")."""
        wanted = re.sub(r"[\s-]+", "_", str(name or "").strip().lower())
        wanted = wanted[len(PREFIX):] if wanted.startswith(PREFIX) else wanted
        return self.profile(voice_id(wanted)) if wanted in self.names() else None


def check_style(voice: str, instruct: Any, speakers: BuiltInSpeakers) -> str:
    """The style instruction of a take, refused where it would be ignored."""
    style = " ".join(str(instruct or "").split())
    if not style:
        return ""
    if not is_speaker(voice):
        raise InvalidInput(CLONES_TAKE_NO_STYLE)
    if not speakers.takes_style:
        raise InvalidInput("The 0.6B named-speaker model does not take style instructions: clear the instruction.")
    if len(style) > 300:
        raise InvalidInput(f"The style instruction is {len(style)} characters long; keep it under 300.")
    return style


def backend_for(studio: Any, speech: SpeechRequest) -> SpeechBackend:
    """The engine a take goes to: the CustomVoice one for a built-in speaker, else the studio's
    cloning backend. The other big models are unloaded first, so at most one is in memory."""
    target = studio.speakers.engine if speech.speaker else studio.tts
    if target is None:
        raise NotFound(f"Profile {voice_id(speech.speaker)} does not exist.")
    for other in (studio.tts, studio.speakers.engine, studio.designer.engine):
        if other is not None and other is not target and other.loaded_size is not None:
            other.unload()
    return target


def _config_on_disk(source: str) -> dict[str, Any] | None:
    """The checkpoint's config.json from a local folder or the Hugging Face cache (no download)."""
    path: Path | None = Path(source) / "config.json" if Path(source).is_dir() else None
    if path is None:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(source, "config.json")
        except Exception:  # not a hub id, or no cache: the released list will do
            return None
        path = Path(cached) if isinstance(cached, str) else None
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path is not None else None
    except (OSError, ValueError):
        return None
