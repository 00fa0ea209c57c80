"""Gradio Blocks UI: one module per tab, each a thin layer over :mod:`voicebox.services`."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..config import Settings

TITLE = "voicebox"
TAGLINE = "Clone a voice from a few seconds of audio, then speak any text in it."


def build_ui(studio: Any | None, settings: Settings) -> gr.Blocks:
    """The whole app. Tabs are filled in by their modules as they land."""
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}\n{TAGLINE}")
        for name in ("Profiles", "Generate", "History", "Transcribe", "Models"):
            with gr.Tab(name):
                gr.Markdown(f"{name} is coming soon.")
    return demo
