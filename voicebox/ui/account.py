""""Your data" (issue #16): download the whole library as a ZIP, import such a ZIP, delete everything.

An accordion below the tabs, closed until wanted. Its line of counts is read when it opens and
after each action. The ZIP is written to a private temp folder and handed to the page only as a
:class:`~voicebox.ui.common.TempAudio` copy made for the owner (the data directory is never
served). Deleting everything asks first in an inline panel and acts only on the typed words
``delete everything``; a refusal (other words, a render or export still running) is a toast and
leaves the page as it was. An import or a delete also refreshes the Profiles list and the Generate
tab's voice picker, so no tab offers a voice that is gone or hides one that came back.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import gradio as gr

from ..errors import InvalidInput
from ..my_data import busy, counts, delete_everything, export_library
from ..my_data_import import ImportReport, import_library
from ..quotas import page_caller
from .common import LIGHT_QUEUE, UIContext, escape, md, refusing, ui_event
from .generate import GenerateTab
from .profiles import ProfilesTab

#: What a person types to confirm (the REST API's word is ``delete-everything``).
CONFIRM_WORDS = "delete everything"
WRONG_WORDS = f"Nothing was deleted: type “{CONFIRM_WORDS}” in the box, then press Delete everything."
INTRO = (
    "Download everything you keep here (voices with their samples and transcripts, History takes, "
    "projects) as a ZIP of ordinary files with a `manifest.json`; import such a ZIP here or into "
    "another voicebox."
)


def plural(count: int, word: str, many: str = "") -> str:
    """``1 profile``, ``2 profiles`` (``many``: the plural when it is not ``word`` + s)."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def counts_line(numbers: dict[str, int]) -> str:
    """One Markdown line of what the library holds (or that it is empty)."""
    if not any(numbers.get(k, 0) for k in ("profiles", "samples", "history", "projects", "batches")):
        return "**Your library is empty:** no profiles, takes or projects."
    return "**In your library:** " + " · ".join(_parts(numbers)) + "."


def held(numbers: dict[str, int]) -> str:
    """``1 profile (2 samples), 3 takes in History and 0 projects``: the counts as a phrase."""
    parts = _parts(numbers)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _parts(numbers: dict[str, int]) -> list[str]:
    parts = [f"{plural(numbers['profiles'], 'profile')} ({plural(numbers['samples'], 'sample')})",
             f"{plural(numbers['history'], 'take')} in History", plural(numbers["projects"], "project")]
    if numbers.get("batches"):
        parts.append(plural(numbers["batches"], "batch", "batches"))
    return parts


def report_line(report: ImportReport) -> str:
    """What an import added, renamed and left out, in plain words (Markdown, names escaped)."""
    added = [f"{plural(report.profiles, 'profile')} ({plural(report.samples, 'sample')})",
             f"{plural(report.history, 'take')} in History",
             f"{plural(report.projects, 'project')} ({plural(report.project_takes, 'rendered block')})"]
    lines = ["**Imported:** " + ", ".join(added) + "."]
    lines += [f"Renamed: {md(item)}." for item in report.renamed]
    lines += [f"Left out: {md(item)}." for item in report.skipped]
    return "\n\n".join(lines)


class AccountHandlers:
    """Callbacks of "Your data"; each resolves whose data it touches from the event's request."""

    def __init__(self, ctx: UIContext, profile_tab: ProfilesTab, generate_tab: GenerateTab) -> None:
        self.ctx = ctx
        self.profiles = profile_tab.handlers
        self.generate = generate_tab.handlers

    @refusing
    def summary(self, request: gr.Request | None = None) -> str:
        """The counts line, read fresh (the accordion opens long after the page was built)."""
        return counts_line(counts(self.ctx.studio, self.ctx.owner(request)))

    @refusing
    def download(self, request: gr.Request | None = None) -> tuple[Any, ...]:
        """(save button, status, counts): the ZIP is made in a private temp folder and handed out
        only as an owner-recorded temp copy, so no path of the data directory reaches the page."""
        owner = self.ctx.owner(request)
        name = f"voicebox-my-data-{datetime.now(timezone.utc):%Y-%m-%d}.zip"
        with tempfile.TemporaryDirectory(prefix="voicebox-my-data-") as folder:
            made = export_library(self.ctx.studio, owner, Path(folder) / name)
            size = made.stat().st_size
            copy = self.ctx.temp.copy(made, name, owner=owner)
        status = f"Your ZIP is ready: {name}, {size / 1048576:.1f} MB. Press **Save the ZIP** to keep it."
        save = gr.update(value=copy, visible=True)
        return save, status, counts_line(counts(self.ctx.studio, owner))

    @refusing
    def import_zip(self, path: str | None, picked: str | None, search: str | None = None,
                   request: gr.Request | None = None) -> tuple[Any, ...]:
        """(status, counts, profile list, its empty state, Generate picker, its empty state).
        The import counts against the person's quotas; it adds all of the ZIP or nothing."""
        if not path:
            raise InvalidInput("Choose the ZIP that Download my data made.")
        owner = self.ctx.owner(request)
        report = import_library(self.ctx.studio, owner, Path(path), user=page_caller(self.ctx.studio, request))
        gr.Info(escape(f"Imported {plural(report.profiles, 'profile')}, {plural(report.history, 'take')} "
                       f"and {plural(report.projects, 'project')}."))
        return report_line(report), counts_line(counts(self.ctx.studio, owner)), *self._pickers(picked, search)

    @refusing
    def ask_delete(self, request: gr.Request | None = None) -> tuple[Any, Any, Any]:
        """(panel, its text, the words box emptied): say exactly what would go, and whether a
        running render or export must be stopped first."""
        owner = self.ctx.owner(request)
        numbers = counts(self.ctx.studio, owner)
        text = (f"**Delete everything?** This removes, for good, {held(numbers)}, with all their audio, and any "
                "batch clips and exports. Download your data first if you may want it back.\n\n"
                f"To confirm, type **{CONFIRM_WORDS}** below.")
        why = busy(self.ctx.studio, owner)
        if why:
            text += f"\n\n⚠️ {md(why)}"
        return gr.update(visible=True), text, ""

    @refusing
    def confirm_delete(self, words: str | None, picked: str | None, search: str | None = None,
                       request: gr.Request | None = None) -> tuple[Any, ...]:
        """Delete everything, only on the typed words (:data:`WRONG_WORDS` otherwise; a running
        render or export refuses too). Returns (panel, words, save button, status, counts,
        profile list, its empty state, Generate picker, its empty state, then the Profiles
        editor emptied: the profile it showed is gone)."""
        if " ".join((words or "").lower().replace("-", " ").split()) != CONFIRM_WORDS:
            raise InvalidInput(WRONG_WORDS)
        owner = self.ctx.owner(request)
        done = delete_everything(self.ctx.studio, owner)
        status = (f"Deleted {plural(done.profiles, 'profile')}, {plural(done.samples, 'sample')}, "
                  f"{plural(done.generations, 'take')} and {plural(done.projects, 'project')}.")
        gr.Info(escape(status))
        return (gr.update(visible=False), "", gr.update(visible=False, value=None), status,
                counts_line(counts(self.ctx.studio, owner)), *self._pickers(picked, search),
                *self.profiles.editor_for(None))

    @staticmethod
    def cancel() -> tuple[Any, str]:
        """(panel, words): close the panel and forget what was typed; nothing on the server changes."""
        return gr.update(visible=False), ""

    def _pickers(self, picked: str | None, search: str | None) -> tuple[Any, Any, Any, Any]:
        """The Profiles list (under the search the person typed) and the Generate picker as they
        are now, keeping the picked voice when it is still there."""
        plist, empty = self.profiles.refresh_list(search or "", None)
        choice, gen_empty = self.generate.refresh(picked)
        return plist, empty, choice, gen_empty


def build(ctx: UIContext, profile_tab: ProfilesTab, generate_tab: GenerateTab) -> AccountHandlers:
    """Lay out "Your data" (below the tabs) and wire its events."""
    h = AccountHandlers(ctx, profile_tab, generate_tab)
    with gr.Accordion("Your data", open=False, elem_id="vb-account") as box:
        summary = gr.Markdown("", elem_id="account-counts")
        gr.Markdown(INTRO, elem_classes="vb-lead")
        with gr.Row(elem_classes="vb-account-actions"):
            make = gr.Button("Download my data", size="md", elem_id="account-download")
            upload = gr.UploadButton("Import a voicebox ZIP", file_types=[".zip"], type="filepath", size="md",
                                     elem_id="account-import")
            ask = gr.Button("Delete everything…", variant="stop", size="md", elem_id="account-delete")
        save = gr.DownloadButton("Save the ZIP", visible=False, variant="primary", size="md", elem_id="account-save")
        status = gr.Markdown("", elem_id="account-status", elem_classes="vb-note")
        with gr.Column(visible=False, variant="panel", elem_id="account-confirm", elem_classes="vb-confirm") as panel:
            confirm_text = gr.Markdown(elem_id="account-confirm-text")
            words = gr.Textbox(label=f"Type “{CONFIRM_WORDS}” to confirm", placeholder=CONFIRM_WORDS,
                               max_length=40, elem_id="account-words")
            with gr.Row(elem_classes="vb-account-actions"):
                cancel = gr.Button("Cancel", size="md", elem_id="account-cancel")
                confirm = gr.Button("Delete everything", variant="stop", size="md", elem_id="account-confirm-delete")

    pickers = [profile_tab.plist, profile_tab.empty, generate_tab.profile, generate_tab.empty]
    box.expand(h.summary, outputs=summary, **ui_event("account_counts"), **LIGHT_QUEUE)
    make.click(h.download, outputs=[save, status, summary], show_progress_on=[status],
               **ui_event("account_download"), **LIGHT_QUEUE)
    upload.upload(h.import_zip, inputs=[upload, generate_tab.profile, profile_tab.search],
                  outputs=[status, summary, *pickers],
                  show_progress_on=[status], **ui_event("account_import"), **LIGHT_QUEUE)
    ask.click(h.ask_delete, outputs=[panel, confirm_text, words], **ui_event("account_ask_delete"), **LIGHT_QUEUE)
    cancel.click(h.cancel, outputs=[panel, words], **ui_event("account_keep"), **LIGHT_QUEUE)
    confirm.click(h.confirm_delete, inputs=[words, generate_tab.profile, profile_tab.search],
                  outputs=[panel, words, save, status, summary, *pickers, *profile_tab.editor],
                  show_progress_on=[status],
                  **ui_event("account_delete"), **LIGHT_QUEUE)
    return h
