"""Transcribe tab: any clip in (upload or microphone), text out, with language and timed segments.

The same Whisper engine fills in sample transcripts on the Profiles tab; here it is offered on
its own, e.g. to check what Whisper hears before using a clip as a voice sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..languages import WHISPER_CODES
from .common import (
    MODEL_QUEUE,
    UIContext,
    check_upload,
    escape,
    facts_html,
    ui_event,
    warn,
)

AUTO = "auto"
LANGUAGE_NAMES = {code: name.title() for name, code in WHISPER_CODES.items()}


def language_choices() -> list[tuple[str, str]]:
    return [("Detect automatically", AUTO), *sorted(((n, c) for c, n in LANGUAGE_NAMES.items()))]


def language_html(result: dict[str, Any]) -> str:
    code = str(result.get("language", ""))
    name = LANGUAGE_NAMES.get(code, code or "unknown")
    probability = float(result.get("language_probability") or 0.0)
    cached = " · from cache" if result.get("cached") else ""
    return facts_html(
        [
            ("Language", f"{name} ({code})"),
            ("Confidence", f"{probability:.0%}"),
            ("Duration", f"{float(result.get('duration') or 0):.1f} s"),
            ("Model", f"{short_model(result.get('model'))}{cached}"),
        ]
    )


def short_model(name: Any) -> str:
    """Last path component of a model path or id (a full local path says nothing to a user)."""
    text = str(name or "")
    return text.rstrip("/").rsplit("/", 1)[-1] if "/" in text else text


class TranscribeHandlers:
    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx

    def transcribe(self, clip: str | None, language: str | None) -> tuple[str, str, list[list[Any]]]:
        """(text, language facts, segments table) for a clip.

        A refusal clears the last result, so an old transcript never sits beside a new error,
        and says why where the facts were (the toast says it too); it never raises, so no
        "Error" badge covers the outputs.
        """
        try:
            path = check_upload(clip, self.ctx.settings)
            result = self.ctx.studio.transcribe(
                path, language=None if language in (None, "", AUTO) else language
            )
        except Exception as exc:
            reason = warn(exc)
            return "", f'<p class="vb-note vb-refusal">Not transcribed: {escape(reason)}</p>', []
        segments = [
            [f"{s['start']:.2f}", f"{s['end']:.2f}", s["text"].strip()] for s in result.get("segments", [])
        ]
        if not result.get("text", "").strip():
            gr.Warning("Whisper heard no words in this clip.")
        return result.get("text", "").strip(), language_html(result), segments


@dataclass
class TranscribeTab:
    tab: gr.Tab
    handlers: TranscribeHandlers


def build(ctx: UIContext) -> TranscribeTab:
    h = TranscribeHandlers(ctx)
    with gr.Tab("Transcribe", id="transcribe") as tab:
        gr.Markdown(
            "Upload or record speech and Whisper writes it down, with timed segments.", elem_classes="vb-lead"
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                clip = gr.Audio(
                    sources=["upload", "microphone"],
                    type="filepath",
                    label="Audio",
                    elem_id="transcribe-audio",
                )
                language = gr.Dropdown(
                    language_choices(), value=AUTO, label="Language", elem_id="transcribe-language"
                )
                run = gr.Button("Transcribe", variant="primary", elem_id="transcribe-button")
            with gr.Column(scale=3):
                text = gr.Textbox(
                    label="Text",
                    lines=6,
                    buttons=["copy"],
                    interactive=False,
                    placeholder="The transcript appears here.",
                    elem_id="transcribe-text",
                )
                info = gr.HTML(elem_id="transcribe-info")
                segments = gr.Dataframe(
                    headers=["Start (s)", "End (s)", "Text"],
                    value=[],
                    interactive=False,
                    wrap=True,
                    label="Segments",
                    elem_id="transcribe-segments",
                    column_widths=["14%", "14%", "72%"],
                )
    run.click(
        h.transcribe,
        inputs=[clip, language],
        outputs=[text, info, segments],
        **ui_event("transcribe"),
        **MODEL_QUEUE,
    )
    return TranscribeTab(tab, h)
