"""Profiles tab: the voices. Search, create, edit, delete (with confirmation) and their samples.

A profile is edited in one form that doubles as the "new profile" form when nothing is
selected. Samples are added by upload (several files at once) or by microphone; each one is
cleaned and transcribed by the service layer, and the audio pipeline's refusals ("silent",
"too short", "not audio") appear as toasts naming the file that caused them. The sample list is a
``gr.render`` block: a player, the duration, an editable transcript and a delete button each.
Creating a profile and adding a sample count against the logged-in person's quotas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from ..errors import InvalidInput, VoiceboxError
from ..identity import multi_user
from ..ids import utc_now
from ..quotas import page_caller
from ..records import Profile, Sample
from .common import (
    LIGHT_QUEUE,
    MODEL_QUEUE,
    UIContext,
    escape,
    language_label,
    md,
    refusing,
    ui_event,
)
from . import design
from .samples import add_file, add_files, failure_message, sample_card

NO_PROFILES = (
    "**No profiles yet — create one to start.** Give it a name, then add a few seconds of the voice."
)
NO_MATCH = "**No profiles match this search.**"
NO_SAMPLES = (
    "**No samples yet.** Upload a clip or record one: 5–15 seconds of one person speaking clearly. "
    "Whisper writes the transcript for you; check it, since the clone follows it."
)


def profile_label(profile: Profile) -> str:
    """List entry: the name and how many samples the profile has."""
    count = profile.sample_count
    return f"{profile.name} · {count} sample{'s' if count != 1 else ''}"


class ProfileHandlers:
    """Callbacks of the Profiles tab; each one is a thin call into ``Studio``."""

    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx

    # ---- list -------------------------------------------------------------------------------
    @refusing
    def refresh_list(self, search: str | None, selected: str | None) -> tuple[Any, Any]:
        """(profile list, empty-state message) for the current search."""
        return self._list(search, selected)

    def _list(self, search: str | None, selected: str | None) -> tuple[Any, Any]:
        wanted = (search or "").strip() or None
        items = self.ctx.studio.list_profiles(search=wanted, owner=self.ctx.owner())["items"]
        choices = [(profile_label(p), p.id) for p in items]
        value = selected if any(p.id == selected for p in items) else None
        if items:
            empty = gr.update(visible=False)
        else:
            empty = gr.update(value=NO_MATCH if (search or "").strip() else NO_PROFILES, visible=True)
        return gr.update(choices=choices, value=value, visible=bool(items)), empty

    # ---- editor ------------------------------------------------------------------------------
    def _editor(self, profile: Profile | None) -> tuple[Any, ...]:
        """(selected id, heading, name, description, language, consent, create, save, delete,
        samples box, confirm row, sample status). The consent box is asked for a new profile only,
        and only where several people keep libraries."""
        if profile is None:
            return (
                "",
                "### New profile",
                "",
                "",
                "Auto",
                gr.update(visible=multi_user(self.ctx.settings), value=False),
                gr.update(visible=True),
                gr.update(visible=False),
                gr.update(visible=False),
                gr.update(visible=False),
                gr.update(visible=False),
                "",
            )
        return (
            profile.id,
            f"### {md(profile.name)}",
            profile.name,
            profile.description,
            language_label(profile.language),
            gr.update(visible=False, value=False),
            gr.update(visible=False),
            gr.update(visible=True),
            gr.update(visible=True),
            gr.update(visible=True),
            gr.update(visible=False),
            "",
        )

    @refusing
    def select(self, profile_id: str | None) -> tuple[Any, ...]:
        """Open a profile from the list (or the empty form when the selection is cleared)."""
        if not profile_id:
            return self._editor(None)
        return self._editor(self.ctx.studio.get_profile(profile_id, owner=self.ctx.owner()))

    @refusing
    def new(self) -> tuple[Any, ...]:
        """Clear the form for a new profile; also clears the list selection."""
        return (gr.update(value=None), *self.editor_for(None))

    def editor_for(self, profile: Profile | None) -> tuple[Any, ...]:
        """The editor's outputs showing ``profile``, or the empty form (its profile went elsewhere)."""
        return self._editor(profile)

    @refusing
    def create(self, name: str, description: str, language: str, search: str | None, consent: bool = False,
               request: gr.Request | None = None) -> tuple[Any, ...]:
        """Create a profile and open it. Returns the list outputs followed by the editor outputs.
        A ticked consent box is recorded with the time (refused unticked on a shared server)."""
        user, owner = page_caller(self.ctx.studio, request), self.ctx.owner(request)
        profile = self.ctx.studio.create_profile(name, description or "", language or "Auto", owner=owner,
                                                 user=user, consent=utc_now() if consent else None)
        gr.Info(f"Profile {escape(profile.name)} created. Now add a sample of the voice.")
        opened = self.ctx.studio.get_profile(profile.id, owner=owner)
        return (*self._list(search, profile.id), *self._editor(opened))

    @refusing
    def save(
        self, profile_id: str, name: str, description: str, language: str, search: str | None,
        consent: bool = False, request: gr.Request | None = None,
    ) -> tuple[Any, ...]:
        """Save name, description and language of the open profile."""
        if not profile_id:
            return self.create(name, description, language, search, consent, request)
        owner = self.ctx.owner(request)
        profile = self.ctx.studio.update_profile(
            profile_id, owner=owner, name=name, description=description or "", language=language or "Auto"
        )
        gr.Info("Changes saved.")
        opened = self.ctx.studio.get_profile(profile.id, owner=owner)
        return (*self._list(search, profile_id), *self._editor(opened))

    @refusing
    def ask_delete(self, profile_id: str) -> tuple[Any, Any]:
        """Show the confirmation row, saying exactly what will be removed."""
        profile = self.ctx.studio.get_profile(profile_id, owner=self.ctx.owner())
        count = len(profile.samples)
        text = (
            f"**Delete {md(profile.name)}?** Its {count} sample{'s' if count != 1 else ''} and "
            "cached voice are removed for good. Takes in History keep the profile's name."
        )
        return gr.update(visible=True), text

    @refusing
    def confirm_delete(self, profile_id: str, search: str | None) -> tuple[Any, ...]:
        """Delete the profile and return to the empty form."""
        owner = self.ctx.owner()
        profile = self.ctx.studio.get_profile(profile_id, owner=owner)
        self.ctx.studio.delete_profile(profile_id, owner=owner)
        gr.Info(f"Profile {escape(profile.name)} deleted.")
        return (*self._list(search, None), *self._editor(None))

    # ---- samples ----------------------------------------------------------------------------
    @refusing
    def add_uploads(
        self, profile_id: str, files: list[Any] | None, version: int, search: str | None,
        request: gr.Request | None = None,
    ) -> tuple[Any, ...]:
        """Add every uploaded file; a bad file gets its own toast and does not stop the others.

        Returns:
            (status line, version, profile list, empty state)
        """
        paths = [Path(getattr(f, "name", f)) for f in (files or [])]
        if not paths:
            return "", version, gr.update(), gr.update()
        added, failures = add_files(self.ctx, profile_id, paths, page_caller(self.ctx.studio, request),
                                         self.ctx.owner(request))
        for name, exc in failures:
            gr.Warning(f"{escape(name)}: {escape(failure_message(exc))}")
        if failures and not added:
            status = "No sample was added: " + (
                "the file could not be used." if len(failures) == 1 else "none of the files could be used."
            )
            return status, gr.skip(), gr.skip(), gr.skip()
        status = f"Added {added} sample{'s' if added != 1 else ''}."
        if failures:
            status += f" {len(failures)} file{'s' if len(failures) != 1 else ''} could not be used."
        gr.Info(status)
        return (status, version + 1, *self._list(search, profile_id))

    @refusing
    def add_recording(
        self, profile_id: str, recording: str | None, version: int, search: str | None,
        request: gr.Request | None = None,
    ) -> tuple[Any, ...]:
        """Add the microphone recording as a sample. Returns (status line, version, list, empty)."""
        if not recording:
            raise InvalidInput("The recording did not arrive; press Record, speak, then Stop again.")
        user, owner = page_caller(self.ctx.studio, request), self.ctx.owner(request)
        add_file(self.ctx, profile_id, Path(recording), user, owner)
        gr.Info("Recording added.")
        return ("Recording added.", version + 1, *self._list(search, profile_id))

    @refusing
    def save_transcript(self, sample_id: str, text: str) -> None:
        self.ctx.studio.update_sample_text(sample_id, text or "", owner=self.ctx.owner())
        gr.Info(
            "Transcript saved."
            if (text or "").strip()
            else "Transcript cleared: this sample now only gives the voice's timbre (x-vector mode)."
        )

    @refusing
    def delete_sample(
        self, sample_id: str, version: int, profile_id: str, search: str | None
    ) -> tuple[Any, ...]:
        """Delete one sample. Returns (version, profile list, empty)."""
        self.ctx.studio.delete_sample(sample_id, owner=self.ctx.owner())
        gr.Info("Sample deleted.")
        return (version + 1, *self._list(search, profile_id))

    def sample_audio(self, sample: Sample, index: int) -> str | None:
        """A private temp copy of a sample for its player (keyed by content, so it is reused)."""
        owner = self.ctx.owner()
        try:
            source = self.ctx.studio.sample_path(sample.id, owner=owner)
        except VoiceboxError:
            return None
        return self.ctx.temp.cached_copy(source, sample.sha256, f"sample-{index}.wav", owner)


@dataclass
class ProfilesTab:
    tab: gr.Tab
    plist: gr.Radio
    empty: gr.Markdown
    handlers: ProfileHandlers
    #: The search box, and the editor's components in :meth:`ProfileHandlers.editor_for` order.
    search: Any = None
    editor: list[Any] = field(default_factory=list)


def build(ctx: UIContext) -> ProfilesTab:
    """Lay out the Profiles tab and wire its events."""
    h = ProfileHandlers(ctx)
    with gr.Tab("Profiles", id="profiles") as tab:
        # States live inside the Tab: one created directly under gr.Tabs shifts the frontend's tab order.
        selected = gr.State("")
        version = gr.State(0)
        pending = gr.State([])
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=260, elem_classes="vb-sidebar"):
                search = gr.Textbox(
                    placeholder="Search profiles…",
                    show_label=False,
                    container=False,
                    elem_id="profile-search",
                )
                new_btn = gr.Button("+ New profile", size="md", elem_id="profile-new")
                empty = gr.Markdown(NO_PROFILES, elem_classes="vb-empty", elem_id="profile-empty")
                plist = gr.Radio(
                    choices=[],
                    value=None,
                    show_label=False,
                    container=False,
                    visible=False,
                    elem_id="profile-list",
                    elem_classes="vb-list",
                )
            with gr.Column(scale=3, elem_classes="vb-main"):
                heading = gr.Markdown("### New profile", elem_id="profile-heading")
                with gr.Group():
                    name = gr.Textbox(
                        label="Name", max_length=100, placeholder="e.g. Grandma Rose", elem_id="profile-name"
                    )
                    description = gr.Textbox(
                        label="Description",
                        lines=2,
                        placeholder="Optional: who, where, mood",
                        elem_id="profile-description",
                    )
                    language = gr.Dropdown(
                        ctx.languages(),
                        value="Auto",
                        label="Language",
                        info="The language the voice usually speaks; Auto detects it.",
                        elem_id="profile-language",
                    )
                    consent = gr.Checkbox(
                        False,
                        label="I have the speaker's permission to clone this voice",
                        info="Asked on a shared studio; your confirmation is recorded with the time.",
                        visible=multi_user(ctx.settings),
                        elem_id="profile-consent",
                    )
                with gr.Row():
                    create_btn = gr.Button("Create profile", variant="primary", elem_id="profile-create")
                    save_btn = gr.Button(
                        "Save changes", variant="primary", visible=False, elem_id="profile-save"
                    )
                    delete_btn = gr.Button(
                        "Delete profile", variant="stop", visible=False, elem_id="profile-delete"
                    )
                with gr.Column(
                    visible=False, variant="panel", elem_id="profile-confirm", elem_classes="vb-confirm"
                ) as confirm_row:
                    confirm_text = gr.Markdown(elem_id="profile-confirm-text")
                    with gr.Row():
                        keep_btn = gr.Button("Keep it", size="md", elem_id="profile-keep")
                        confirm_btn = gr.Button(
                            "Delete permanently", variant="stop", size="md", elem_id="profile-confirm-delete"
                        )
                with gr.Column(visible=False, elem_id="profile-samples") as samples_box:
                    gr.Markdown(
                        "#### Voice samples\nUpload clips or record one (a recording is added when you "
                        "press Stop). Several samples are combined, up to 20 s, into one voice."
                    )
                    with gr.Row(equal_height=True):
                        uploads = gr.File(
                            label="Upload samples (several at once)",
                            file_count="multiple",
                            file_types=["audio"],
                            height=160,
                            elem_id="sample-upload",
                        )
                        mic = gr.Audio(
                            sources=["microphone"],
                            type="filepath",
                            elem_id="sample-mic",
                            buttons=[],
                            label="Record a sample",
                        )
                    sample_status = gr.Markdown("", elem_id="sample-status", elem_classes="vb-note")

                    @gr.render(inputs=[selected, version])
                    def render_samples(profile_id: str, _version: int) -> None:
                        """One card per sample (re-rendered when samples change)."""
                        if not profile_id:
                            return
                        try:  # the owner of the event that renders (gr.render takes no gr.Request)
                            samples = ctx.studio.list_samples(profile_id, owner=ctx.owner())
                        except VoiceboxError:
                            return
                        if not samples:
                            gr.Markdown(NO_SAMPLES, elem_classes="vb-empty", elem_id="samples-empty")
                            return
                        for index, sample in enumerate(samples, 1):
                            sample_card(h, index, sample, version, selected, search, plist, empty)
                designer = design.layout(ctx)

    editor = [selected, heading, name, description, language, consent, create_btn, save_btn, delete_btn,
              samples_box, confirm_row, sample_status]
    listing = [plist, empty]
    design.wire(ctx, designer, h, search, listing, editor)
    search.change(
        h.refresh_list,
        inputs=[search, selected],
        outputs=listing,
        **ui_event("profiles_search"),
        **LIGHT_QUEUE,
    )
    tab.select(
        h.refresh_list,
        inputs=[search, selected],
        outputs=listing,
        **ui_event("profiles_refresh"),
        **LIGHT_QUEUE,
    )
    plist.input(h.select, inputs=plist, outputs=editor, **ui_event("profiles_open"), **LIGHT_QUEUE)
    new_btn.click(h.new, outputs=[plist, *editor], **ui_event("profiles_new"), **LIGHT_QUEUE)
    create_btn.click(
        h.create,
        inputs=[name, description, language, search, consent],
        outputs=[*listing, *editor],
        **ui_event("profiles_create"),
        **LIGHT_QUEUE,
    )
    name.submit(
        h.save,
        inputs=[selected, name, description, language, search, consent],
        outputs=[*listing, *editor],
        **ui_event("profiles_submit"),
        **LIGHT_QUEUE,
    )
    save_btn.click(
        h.save,
        inputs=[selected, name, description, language, search, consent],
        outputs=[*listing, *editor],
        **ui_event("profiles_save"),
        **LIGHT_QUEUE,
    )
    delete_btn.click(
        h.ask_delete,
        inputs=selected,
        outputs=[confirm_row, confirm_text],
        **ui_event("profiles_ask_delete"),
        **LIGHT_QUEUE,
    )
    keep_btn.click(
        lambda: gr.update(visible=False), outputs=confirm_row, **ui_event("profiles_keep"), **LIGHT_QUEUE
    )
    confirm_btn.click(
        h.confirm_delete,
        inputs=[selected, search],
        outputs=[*listing, *editor],
        **ui_event("profiles_delete"),
        **LIGHT_QUEUE,
    )
    # The upload box is emptied first (the paths wait in ``pending``), so it is ready for the next files
    # whatever happens to these.
    uploads.upload(
        lambda files: (files or [], None, ""),
        inputs=uploads,
        outputs=[pending, uploads, sample_status],
        **ui_event("samples_upload_take"),
        **LIGHT_QUEUE,
    ).then(
        h.add_uploads,
        inputs=[selected, pending, version, search],
        outputs=[sample_status, version, *listing],
        show_progress_on=[sample_status],
        **ui_event("samples_upload"),
        **MODEL_QUEUE,
    )
    mic.start_recording(lambda: "", outputs=sample_status, **ui_event("samples_record_start"), **LIGHT_QUEUE)
    # stop_recording fires after the browser has uploaded the take (a separate "Add" button could be
    # pressed while the upload is still in flight and find no recording).
    mic.stop_recording(
        h.add_recording,
        inputs=[selected, mic, version, search],
        outputs=[sample_status, version, *listing],
        show_progress_on=[sample_status],
        **ui_event("samples_record"),
        **MODEL_QUEUE,
    ).success(lambda: None, outputs=mic, **ui_event("samples_record_clear"), **LIGHT_QUEUE)
    return ProfilesTab(tab, plist, empty, h, search, editor)
