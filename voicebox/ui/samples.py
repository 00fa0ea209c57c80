"""One voice sample on the Profiles tab: player, editable transcript, save, and a delete that asks.

Built inside the Profiles tab's ``gr.render`` block, once per sample, so it lives apart from
the tab's layout and wiring (:mod:`voicebox.ui.profiles`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from ..errors import InvalidInput, VoiceboxError
from ..records import Sample
from .common import (
    GENERIC_ERROR,
    LIGHT_QUEUE,
    UIContext,
    check_upload,
    escape,
    fmt_seconds,
    log,
    md,
    show_panel_on,
    ui_event,
)

if TYPE_CHECKING:
    from .profiles import ProfileHandlers


def add_file(ctx: UIContext, profile_id: str, path: Path, user: str | None = None, owner: str = "") -> Sample:
    """One uploaded or recorded file as a sample of ``profile_id`` (size checked first); the
    cleaning notes ("trimmed 2 s of silence") become toasts."""
    if not profile_id:
        raise InvalidInput("Create or choose a profile first.")
    upload = check_upload(path, ctx.settings)
    sample = ctx.studio.add_sample(profile_id, upload, owner=owner, user=user)
    for note in sample.warnings:
        gr.Warning(escape(note))
    return sample


def add_files(ctx: UIContext, profile_id: str, paths: list[Path], user: str | None = None,
              owner: str = "") -> tuple[int, list[tuple[str, Exception]]]:
    """Add each file; a bad one is collected with its error and does not stop the others.
    Returns (how many were added, [(file name, error)])."""
    added, failures = 0, []
    for path in paths:
        try:
            add_file(ctx, profile_id, path, user, owner)
            added += 1
        except VoiceboxError as exc:
            failures.append((path.name, exc))
        except Exception as exc:  # logged; the user sees the generic message for that file
            log.error("adding sample %s failed", path.name, exc_info=exc)
            failures.append((path.name, exc))
    return added, failures


def failure_message(exc: BaseException) -> str:
    """What the user reads for a failed file (internal errors were logged, not shown)."""
    return exc.message if isinstance(exc, VoiceboxError) else GENERIC_ERROR


def sample_label(index: int, sample: Sample) -> str:
    return f"Sample {index} · {fmt_seconds(sample.duration)}"


def sample_card(
    h: ProfileHandlers,
    index: int,
    sample: Sample,
    version: gr.State,
    selected: gr.State,
    search: gr.Textbox,
    plist: gr.Radio,
    empty: gr.Markdown,
) -> None:
    """One sample: player, duration, editable transcript, save and delete (inside ``gr.render``)."""
    sample_id = sample.id
    with gr.Group(elem_classes="vb-sample", elem_id=f"sample-{index}"):
        with gr.Row(equal_height=True):
            gr.Audio(
                value=h.sample_audio(sample, index),
                label=sample_label(index, sample),
                interactive=False,
                type="filepath",
                buttons=["download"],
                scale=2,
                min_width=240,
                elem_classes="vb-sample-player",
                key=f"player-{sample_id}",
            )
            with gr.Column(scale=3):
                transcript = gr.Textbox(
                    value=sample.reference_text,
                    label="Transcript",
                    interactive=True,  # inside gr.render a Textbox with a value defaults to read-only
                    lines=2,
                    placeholder="What the sample says (empty: timbre only)",
                    elem_classes="vb-transcript",
                    key=f"text-{sample_id}",
                )
                with gr.Row():
                    save = gr.Button(
                        "Save transcript", size="sm", key=f"save-{sample_id}", elem_classes="vb-sample-save"
                    )
                    remove = gr.Button(
                        "Delete sample",
                        size="sm",
                        variant="stop",
                        key=f"del-{sample_id}",
                        elem_classes="vb-sample-delete",
                    )
        for note in sample.warnings:
            gr.Markdown(f"⚠️ {md(note)}", elem_classes="vb-note")
        with gr.Column(
            visible=False, variant="panel", key=f"confirm-{sample_id}", elem_classes="vb-confirm vb-sample-confirm"
        ) as confirm:
            gr.Markdown(
                f"**Delete sample {index}?** Its audio and transcript are removed for good, and the voice "
                "is rebuilt from the other samples."
            )
            with gr.Row():
                keep = gr.Button("Keep it", size="sm", key=f"keep-{sample_id}", elem_classes="vb-sample-keep")
                really = gr.Button(
                    "Delete permanently",
                    variant="stop",
                    size="sm",
                    key=f"really-{sample_id}",
                    elem_classes="vb-sample-confirm-delete",
                )

    def save_text(text: str) -> None:
        return h.save_transcript(sample_id, text)

    def delete(current: int, profile_id: str, query: str) -> tuple[Any, ...]:
        return h.delete_sample(sample_id, current, profile_id, query)

    save.click(save_text, inputs=transcript, **ui_event("sample_save_text"), **LIGHT_QUEUE)
    show_panel_on(remove, keep, confirm, "sample")
    really.click(
        delete,
        inputs=[version, selected, search],
        outputs=[version, plist, empty],
        **ui_event("sample_delete"),
        **LIGHT_QUEUE,
    )
