"""What each Qwen3-TTS model family needs around the text: one builder per variant.

A Base checkpoint clones a voice from samples: it needs a voice prompt (speaker embedding, and in
ICL mode the reference's codec frames and transcript) and the clone arguments of the official
``generate``. CustomVoice (named speakers with instructions) and VoiceDesign (a voice described in
words) take other arguments and no samples. Keeping that knowledge here, one class per variant,
means the engine's loading, frame loop and decoding stay the same for every family; a new family
adds a builder instead of branches.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np

from ..audio import MODEL_SAMPLE_RATE, combine_references, load_mono
from ..errors import InvalidInput, ModelUnavailable
from .params import GenerationParams
from .prompt_cache import VoicePrompt


class PromptBuilder(Protocol):
    """Builds the voice prompt and the talker's arguments for one model variant."""

    variant: str

    def mode_for(self, samples: Sequence[Any]) -> str:
        """How the samples will be used (``icl`` or ``xvector`` for Base)."""

    def build(self, model: Any, samples: Sequence[Any], mode: str, source: str) -> VoicePrompt:
        """Run the model's encoders over the samples."""

    def generate_kwargs(self, model: Any, texts: list[str], prompt: VoicePrompt, language: str,
                        params: GenerationParams, max_new_tokens: int) -> dict[str, Any]:
        """Arguments of the official ``Qwen3TTSForConditionalGeneration.generate`` for these chunks."""


class BaseCloneBuilder:
    """Voice cloning on a Base checkpoint.

    ICL mode (reference codes + transcript, the closest clone) when every sample has a transcript;
    otherwise x-vector-only mode (the speaker embedding alone: the timbre, not the delivery).
    """

    variant = "base"

    def mode_for(self, samples: Sequence[Any]) -> str:
        if not samples:
            raise InvalidInput("This profile has no samples yet. Add a recording first.")
        return "icl" if all(s.text.strip() for s in samples) else "xvector"

    def build(self, model: Any, samples: Sequence[Any], mode: str, source: str) -> VoicePrompt:
        parts = [(load_mono(s.path, MODEL_SAMPLE_RATE), s.text) for s in samples]
        audio, text = combine_references(parts, MODEL_SAMPLE_RATE)
        items = model.create_voice_clone_prompt(
            ref_audio=(np.asarray(audio, dtype=np.float32), MODEL_SAMPLE_RATE),
            ref_text=text if mode == "icl" else None,
            x_vector_only_mode=mode != "icl",
        )
        item = items[0]
        return VoicePrompt(
            mode=mode,
            ref_spk_embedding=item.ref_spk_embedding,
            ref_code=item.ref_code if mode == "icl" else None,
            ref_text=text if mode == "icl" else None,
            sample_hashes=[s.sha256 for s in samples],
            model=source,
        )

    def generate_kwargs(self, model: Any, texts: list[str], prompt: VoicePrompt, language: str,
                        params: GenerationParams, max_new_tokens: int) -> dict[str, Any]:
        rows = len(texts)
        ref_ids = None
        if prompt.mode == "icl":
            ref_ids = [model._tokenize_texts([model._build_ref_text(prompt.ref_text)])[0]] * rows
        voice = {
            "ref_code": [prompt.ref_code] * rows,
            "ref_spk_embedding": [prompt.ref_spk_embedding] * rows,
            "x_vector_only_mode": [prompt.mode != "icl"] * rows,
            "icl_mode": [prompt.mode == "icl"] * rows,
        }
        return dict(
            input_ids=model._tokenize_texts([model._build_assistant_text(t) for t in texts]),
            ref_ids=ref_ids,
            voice_clone_prompt=voice,
            languages=[language] * rows,
            non_streaming_mode=False,
            max_new_tokens=max_new_tokens,
            **params.sampling_kwargs(),
        )


class _WordsBuilder:
    """What CustomVoice and VoiceDesign share: no samples and no encoders; the voice is the
    request's words (a described voice, or a named speaker with an optional instruction),
    carried to :meth:`generate_kwargs` in the :class:`VoicePrompt` that :meth:`request_prompt`
    makes. Both use the official default ``non_streaming_mode=True`` (the whole text before the
    first frame), as the model makers' own calls of these families do."""

    variant = ""

    def mode_for(self, samples: Sequence[Any]) -> str:
        return self.variant

    def build(self, model: Any, samples: Sequence[Any], mode: str, source: str) -> VoicePrompt:
        raise InvalidInput(f"A {self.variant.replace('_', ' ')} model makes voices from words, not from samples.")

    def request_prompt(self, request: Any, source: str) -> VoicePrompt:
        raise NotImplementedError

    def _instruct_ids(self, model: Any, instruct: str, rows: int) -> list[Any]:
        ids = model._tokenize_texts([model._build_instruct_text(instruct)])[0] if instruct else None
        return [ids] * rows

    def generate_kwargs(self, model: Any, texts: list[str], prompt: VoicePrompt, language: str,
                        params: GenerationParams, max_new_tokens: int) -> dict[str, Any]:
        rows = len(texts)
        return dict(
            input_ids=model._tokenize_texts([model._build_assistant_text(t) for t in texts]),
            instruct_ids=self._instruct_ids(model, prompt.ref_text or "", rows),
            languages=[language] * rows,
            non_streaming_mode=True,
            max_new_tokens=max_new_tokens,
            **params.sampling_kwargs(),
        )


class VoiceDesignBuilder(_WordsBuilder):
    """VoiceDesign: the voice is described in words (``request.instruct``): "a warm, low female
    voice in her fifties, calm, slight British accent"."""

    variant = "voice_design"

    def request_prompt(self, request: Any, source: str) -> VoicePrompt:
        description = " ".join(str(getattr(request, "instruct", "") or "").split())
        if not description:
            raise InvalidInput("Describe the voice in words first, e.g. “a warm, low voice, calm and slow”.")
        return VoicePrompt(mode="design", ref_spk_embedding=None, ref_text=description, model=source)


class CustomVoiceBuilder(_WordsBuilder):
    """CustomVoice: one of the model's named speakers (``request.speaker``), with an optional
    style instruction (``request.instruct``: "whispering", "excited, faster"). The 0.6B
    CustomVoice model ignores instructions (``qwen_tts`` drops them without a word), so an
    instruction for it is refused rather than lost."""

    variant = "custom_voice"

    def request_prompt(self, request: Any, source: str) -> VoicePrompt:
        speaker = str(getattr(request, "speaker", "") or "").strip().lower()
        if not speaker:
            raise InvalidInput("Choose one of the built-in speakers.")
        style = " ".join(str(getattr(request, "instruct", "") or "").split())
        return VoicePrompt(mode="speaker", ref_spk_embedding=None, ref_text=style, model=source, speaker=speaker)

    def generate_kwargs(self, model: Any, texts: list[str], prompt: VoicePrompt, language: str,
                        params: GenerationParams, max_new_tokens: int) -> dict[str, Any]:
        known = [s.lower() for s in (model.get_supported_speakers() or [])]
        if prompt.speaker not in known:
            raise InvalidInput(f"There is no built-in speaker {prompt.speaker!r}; choose one of {', '.join(sorted(known))}.")
        if prompt.ref_text and str(getattr(model.model, "tts_model_size", "")) == "0b6":
            raise InvalidInput("The 0.6B named-speaker model does not take style instructions: clear the "
                               "instruction, or use the 1.7B CustomVoice model.")
        kwargs = super().generate_kwargs(model, texts, prompt, language, params, max_new_tokens)
        return {**kwargs, "speakers": [prompt.speaker] * len(texts)}


BUILDERS: dict[str, PromptBuilder] = {"base": BaseCloneBuilder(), "voice_design": VoiceDesignBuilder(),
                                      "custom_voice": CustomVoiceBuilder()}


def builder_for(model: Any, path: str, wanted: str = "base") -> PromptBuilder:
    """The builder for a loaded checkpoint, which must be of the family the engine drives
    (``wanted``); another family is refused with what the person can do about it."""
    variant = str(getattr(model.model, "tts_model_type", "base") or "base")
    builder = BUILDERS.get(variant)
    if builder is None or variant != wanted:
        need = {"base": "voice cloning needs a Base model", "voice_design": "designing a voice needs a VoiceDesign model",
                "custom_voice": "named speakers need a CustomVoice model"}.get(wanted, f"this needs a {wanted} model")
        raise ModelUnavailable(f"{path} is a Qwen3-TTS {variant} model; {need}.")
    return builder
