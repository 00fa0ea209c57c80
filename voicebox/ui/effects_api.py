"""Effects in the ``gradio_client`` API: the presets, a take's effect, a voice's default.

Plain parameters, JSON results, as :mod:`voicebox.ui.api`: ``effects`` is a preset name, ``none``,
or the settings as JSON text (``'{"pitch_semitones": 3, "reverb_mix": 0.3}'``); each call reads
and changes only the caller's takes and voices (:mod:`voicebox.take_effects`).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from .. import take_effects
from ..effects import describe
from .common import LIGHT_QUEUE, UIContext, guarded

#: Public endpoint names (part of :data:`voicebox.ui.api.ENDPOINTS`).
ENDPOINTS = ("effect_presets", "set_take_effect", "remove_take_effect", "set_voice_effect")


def build(ctx: UIContext) -> None:
    """Register the effect endpoints inside the current ``gr.Blocks``."""
    studio, owner = ctx.studio, ctx.owner

    @guarded
    def effect_presets() -> dict[str, Any]:
        """The presets (every setting of each) and each setting's label, unit and range."""
        return describe()

    @guarded
    def set_take_effect(generation_id: str, effects: str) -> dict[str, Any]:
        """Apply or change a take's effect (a preset name, "none", or settings as JSON text); the
        clean take is kept, and /generation_audio then gives the processed audio."""
        return take_effects.set_effect(studio, generation_id, effects, owner=owner()).to_dict()

    @guarded
    def remove_take_effect(generation_id: str) -> dict[str, Any]:
        """Remove a take's effect: it plays as it was made again."""
        return take_effects.remove_effect(studio, generation_id, owner=owner()).to_dict()

    @guarded
    def set_voice_effect(profile_id: str, effects: str) -> dict[str, Any]:
        """The effect new takes of a voice get unless their request names one ("none" clears it)."""
        return take_effects.set_voice_default(studio, profile_id, effects, owner=owner()).to_dict()

    for fn in (effect_presets, set_take_effect, remove_take_effect, set_voice_effect):
        gr.api(fn, api_name=fn.__name__, **LIGHT_QUEUE)
