"""The Generate tab's voice picker: a person's profiles, then the built-in voices, and the style
box that only built-in voices take (:mod:`voicebox.speakers`).

The style box shows only while a built-in voice of a model that follows instructions is picked;
picking a cloned voice hides and empties it, so a style typed earlier is never sent with a voice
that would ignore it (the service would refuse it anyway, with a message).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..speakers import is_speaker
from .common import UIContext


def voice_choices(ctx: UIContext) -> tuple[list[tuple[str, str]], bool]:
    """(``(label, id)`` of the owner's profiles then the built-in voices, whether the owner has
    profiles of their own)."""
    own = ctx.profile_choices()
    built_in = [(f"{p.name} · built-in voice", p.id) for p in ctx.studio.speakers.profiles()]
    return own + built_in, bool(own)


def style_box() -> gr.Textbox:
    return gr.Textbox(label="Style (built-in voices)", max_length=300, visible=False, elem_id="gen-style",
                      placeholder="e.g. whispering · excited, a little faster · sad and slow",
                      info="How the built-in voice should speak. Cloned voices keep the delivery of their samples.")


def style_for(ctx: UIContext, voice: str | None) -> Any:
    """The style box for the picked voice: shown for a built-in voice that follows styles."""
    if is_speaker(voice) and ctx.studio.speakers.takes_style:
        return gr.update(visible=True)
    return gr.update(visible=False, value="")
