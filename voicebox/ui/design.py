"""Design a voice from words, in the Profiles tab (issue #18; the work is :mod:`voicebox.design`).

An accordion under the profile editor: a description, a sample text, a language and how many
takes; **Design** makes the takes (a model call, queued with the others); each take plays in its
own player; the person picks one, names it and presses **Save as profile**, and the new profile
opens in the editor above with the take as its first sample. Where several people keep
libraries, saving asks for the same permission as making any profile. Shown only when a
VoiceDesign model is configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..design import DEFAULT_TEXT, MAX_DESCRIPTION, MAX_TAKES, MAX_TEXT
from ..identity import multi_user
from ..ids import utc_now
from ..quotas import page_caller
from .common import LIGHT_QUEUE, MODEL_QUEUE, UIContext, escape, refusing, ui_event

#: Slots for takes on the page (the most a design makes).
SLOTS = MAX_TAKES


@dataclass
class DesignPanel:
    """The accordion's components (laid out inside the Profiles tab, wired after its editor)."""

    box: gr.Accordion
    description: gr.Textbox
    text: gr.Textbox
    language: gr.Dropdown
    takes: gr.Radio
    run: gr.Button
    design_id: gr.State
    players: list[gr.Audio]
    keep_box: gr.Column
    keep: gr.Radio
    name: gr.Textbox
    consent: gr.Checkbox
    save: gr.Button
    status: gr.Markdown


def layout(ctx: UIContext) -> DesignPanel:
    """The accordion (hidden when voice design is off on this server)."""
    with gr.Accordion("Design a voice from words", open=False, visible=ctx.studio.designer.available,
                      elem_id="design-box") as box:
        gr.Markdown("Describe a voice, hear a few takes, and keep the one you like as a profile: it then "
                    "speaks any text like a recorded voice.", elem_classes="vb-lead")
        description = gr.Textbox(label="The voice, in words", lines=2, max_length=MAX_DESCRIPTION,
                                 placeholder="e.g. A warm, low female voice in her fifties, calm, slight British accent",
                                 elem_id="design-description")
        text = gr.Textbox(label="What the takes say", lines=2, max_length=MAX_TEXT, placeholder=DEFAULT_TEXT,
                          info="Blank: a sentence with many different sounds, good as a voice sample.",
                          elem_id="design-text")
        with gr.Row():
            language = gr.Dropdown(ctx.languages(), value="Auto", label="Language", elem_id="design-language")
            takes = gr.Radio([str(n) for n in range(1, MAX_TAKES + 1)], value="3", label="Takes",
                             elem_id="design-takes")
        run = gr.Button("Design", variant="primary", elem_id="design-run")
        design_id = gr.State("")
        players = [gr.Audio(label=f"Take {n}", type="filepath", interactive=False, visible=False,
                            elem_id=f"design-take-{n}") for n in range(1, SLOTS + 1)]
        with gr.Column(visible=False, elem_id="design-keep") as keep_box:
            keep = gr.Radio([], label="Keep take", elem_id="design-pick")
            name = gr.Textbox(label="Name of the new profile", max_length=100, elem_id="design-name")
            consent = gr.Checkbox(False, label="I may use this voice: it is not made to imitate a real person "
                                  "without their permission", visible=multi_user(ctx.settings),
                                  elem_id="design-consent")
            save = gr.Button("Save as profile", variant="primary", elem_id="design-save")
        status = gr.Markdown("", elem_id="design-status", elem_classes="vb-note")
    return DesignPanel(box, description, text, language, takes, run, design_id, players, keep_box, keep, name,
                       consent, save, status)


class DesignHandlers:
    def __init__(self, ctx: UIContext, profiles: Any) -> None:
        self.ctx, self.profiles = ctx, profiles

    @refusing
    def design(self, description: str, text: str, language: str, takes: str,
               request: gr.Request | None = None) -> tuple[Any, ...]:
        """(design id, players…, keep box, keep choices, status): make the takes and offer them."""
        owner = self.ctx.owner(request)
        made = self.ctx.studio.designer.design(description, text, language or "auto", takes, owner=owner,
                                               user=page_caller(self.ctx.studio, request))
        players = []
        for slot in range(SLOTS):
            if slot < len(made.takes):
                take = made.takes[slot]
                copy = self.ctx.temp.copy(take.path, f"design-take-{slot + 1}.wav", owner=owner)
                label = f"Take {slot + 1}" + (" (may be cut off)" if take.hit_cap else "")
                players.append(gr.update(value=copy, label=label, visible=True))
            else:
                players.append(gr.update(value=None, visible=False))
        choices = [f"Take {n}" for n in range(1, len(made.takes) + 1)]
        status = (f"{len(made.takes)} take{'s' if len(made.takes) != 1 else ''} ready. "
                  "Listen, pick one, name it and save it as a profile.")
        return (made.id, *players, gr.update(visible=True), gr.update(choices=choices, value=choices[0]), status)

    @refusing
    def save(self, design_id: str, pick: str | None, name: str, consent: bool, search: str | None,
             request: gr.Request | None = None) -> tuple[Any, ...]:
        """(status, profile list, its empty state, the editor showing the new profile…)."""
        if not design_id:
            raise gr.Error("Design a voice first.")
        number = str(pick or "").replace("Take", "").strip()
        profile = self.ctx.studio.designer.save(design_id, number, name, owner=self.ctx.owner(request),
                                                user=page_caller(self.ctx.studio, request),
                                                consent=utc_now() if consent else None)
        gr.Info(f"Profile {escape(profile.name)} saved from take {escape(number)}. It now speaks any text.")
        status = f"Saved as the profile **{escape(profile.name)}** (opened above)."
        return (status, *self.profiles.refresh_list(search, profile.id), *self.profiles.editor_for(profile))


def wire(ctx: UIContext, panel: DesignPanel, profiles: Any, search: Any, listing: list[Any],
         editor: list[Any]) -> DesignHandlers:
    """Connect the panel: Design (model queue) and Save as profile (refreshing list and editor)."""
    h = DesignHandlers(ctx, profiles)
    panel.run.click(
        h.design, inputs=[panel.description, panel.text, panel.language, panel.takes],
        outputs=[panel.design_id, *panel.players, panel.keep_box, panel.keep, panel.status],
        show_progress_on=[panel.status], **ui_event("design_run"), **MODEL_QUEUE,
    )
    panel.save.click(
        h.save, inputs=[panel.design_id, panel.keep, panel.name, panel.consent, search],
        outputs=[panel.status, *listing, *editor], **ui_event("design_save"), **LIGHT_QUEUE,
    )
    return h
