"""Projects tab: long texts as blocks, rendered in the background, exported as one file.

Built to stay usable with hundreds of blocks: the block table is paged (``PAGE_SIZE`` rows), and
while a render or an export runs a timer refreshes only the status lines and the page in view,
never the page. Editing a block marks just that block for the next render; Render also resumes a
paused one. The block editor lives in :mod:`.project_blocks`, the export job in
:mod:`.project_export`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ..errors import InvalidInput
from ..projects.importers import guess_format
from ..projects.records import Project
from . import sentences as sentence_editor
from .common import LIGHT_QUEUE, UIContext, escape, excerpt, refusing, ui_event
from .project_blocks import CURSOR_JS, BlockHandlers, EditorParts, describe_take, effect_choices
from .project_export import AUDIO_CHOICES, LEVEL_CHOICES, SUBTITLE_CHOICES, USE_CHOICES, ExportHandlers
from .takes import status_html

PAGE_SIZE = 25
HEADERS = ["#", "Voice", "Text", "Status", "Chapter"]
FORMATS = [("Plain text", "text"), ("Markdown", "markdown"), ("SRT subtitles", "srt"), ("WebVTT", "vtt"),
           ("CSV (voice,text)", "csv"), ("Dialogue (Name: line)", "dialogue"), ("project.json of an export", "project")]


def status_word(status: str, message: str) -> str:
    """The table's status cell, with the quality badge of a rendered block."""
    if status == "rendered":
        return "⚠ listen" if message else "✓ rendered"
    return {"new": "to render", "stale": "edited: to render", "failed": "✗ failed"}.get(status, status)


def render_line(project: Project) -> str:
    """The render's state in words, with the time left while it runs."""
    r = project.render
    waiting = len(project.to_render)
    if r.state == "running":
        left = f" · about {int(r.seconds_left)} s left" if r.seconds_left else ""
        what = f": “{excerpt(r.current, 60)}”" if r.current else "…"
        return status_html(f"Rendering block {min(r.done + 1, r.total)} of {r.total}{left}{what}")
    if r.state == "paused":
        return status_html(r.message or f"Paused: {waiting} block(s) to go. Press Render to resume.", "warn")
    if r.state == "cancelled" and waiting:
        return status_html(f"Render stopped: {waiting} block(s) to go. Press Render to go on.", "warn")
    if r.state == "failed":
        return status_html(r.message or "The render stopped.", "error")
    if not project.blocks:
        return status_html("No blocks yet: add text below or import a file.")
    if waiting:
        return status_html(f"{waiting} of {len(project.blocks)} block(s) to render.")
    review = sum(1 for b in project.blocks if b.message)
    if review:
        return status_html(f"All {len(project.blocks)} blocks are rendered; {review} marked ⚠ are worth a listen.", "warn")
    return status_html(f"All {len(project.blocks)} blocks are rendered: export when ready.", "ok")


class ProjectHandlers:
    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx

    @property
    def projects(self) -> Any:
        return self.ctx.studio.projects

    def choices(self, selected: str | None = None) -> Any:
        items = self.projects.store.all(self.ctx.owner())
        options = [(f"{p.title} · {len(p.blocks)} blocks", p.id) for p in items]
        value = selected if any(v == selected for _, v in options) else None
        return gr.update(choices=options, value=value)

    def voices(self) -> Any:
        return gr.update(choices=[("Project's voice", "")] + self.ctx.profile_choices())

    def view(self, project_id: str | None, page: int | None = 0, focus: str | None = None) -> tuple[Any, ...]:
        """(panel, heading, status, table, ids, page, page label, prev, next, pause, stop): the page
        ``page``, or the page that holds block ``focus``; Pause and Stop work only while rendering."""
        if not project_id:
            return (gr.update(visible=False), "", "", gr.update(value=[]), [], 0, "", gr.update(interactive=False),
                    gr.update(interactive=False), gr.update(interactive=False), gr.update(interactive=False))
        project = self.projects.store.get(project_id, self.ctx.owner())
        names = {pid: name for name, pid in self.ctx.profile_choices()}
        pages = max(1, -(-len(project.blocks) // PAGE_SIZE))
        at = next((i for i, b in enumerate(project.blocks) if b.id == focus), None) if focus else None
        page = at // PAGE_SIZE if at is not None else max(0, min(int(page or 0), pages - 1))
        shown = project.blocks[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
        rows = [[page * PAGE_SIZE + i + 1, names.get(b.voice or project.voice, "—"), excerpt(b.text, 90),
                 status_word(b.status, b.message), b.chapter] for i, b in enumerate(shown)]
        voice = names.get(project.voice, "no voice chosen")
        return (gr.update(visible=True), f"### {escape(project.title)}\nVoice: {escape(voice)} · {len(project.blocks)} blocks",
                render_line(project), gr.update(value=rows), [b.id for b in shown], page,
                f"Page {page + 1} of {pages}", gr.update(interactive=page > 0), gr.update(interactive=page + 1 < pages),
                *self.stoppers(project_id))

    def stoppers(self, project_id: str) -> tuple[Any, Any]:
        running = self.ctx.studio.renders.is_running(project_id)
        return gr.update(interactive=running), gr.update(interactive=running)

    def opened(self, project: Project, blocks: BlockHandlers) -> tuple[Any, ...]:
        """A project just created, imported or picked: (picker, id, view..., editor closed...,
        render timer: on when the project is already rendering, e.g. started over REST)."""
        running = self.ctx.studio.renders.is_running(project.id)
        return (self.choices(project.id), project.id, *self.view(project.id), *blocks.closed(),
                gr.Timer(active=running))

    @refusing
    def create(self, title: str, voice: str | None, language: str | None, blocks: BlockHandlers) -> tuple[Any, ...]:
        project = self.projects.create(title, voice or "", language or "auto", owner=self.ctx.owner())
        gr.Info(f"Project {escape(project.title)} created. Add blocks, or import a file.")
        return self.opened(project, blocks)

    @refusing
    def import_file(self, path: str | None, fmt: str | None, voice: str | None, language: str | None,
                    blocks: BlockHandlers) -> tuple[Any, ...]:
        if not path:
            raise InvalidInput("Choose a file to import first.")
        fmt = fmt or ("project" if path.lower().endswith(".json") else guess_format(Path(path).name))
        if not fmt:
            raise InvalidInput("Choose the file's format (text, Markdown, SRT, WebVTT, CSV or dialogue).")
        project = self.projects.import_file(Path(path).read_bytes(), fmt, "", voice or "", language or "auto",
                                            owner=self.ctx.owner())
        gr.Info(f"Imported {len(project.blocks)} blocks into {escape(project.title)}.")
        return self.opened(project, blocks)

    @refusing
    def open(self, project_id: str | None, blocks: BlockHandlers) -> tuple[Any, ...]:
        if not project_id:
            return (gr.skip(), "", *self.view(None), *blocks.closed(), gr.Timer(active=False))
        return self.opened(self.projects.store.get(project_id, self.ctx.owner()), blocks)

    @refusing
    def turn(self, project_id: str, page: int, step: int) -> tuple[Any, ...]:
        return self.view(project_id, int(page) + step)

    @refusing
    def render(self, project_id: str, page: int) -> tuple[Any, ...]:
        self._need(project_id)
        self.ctx.studio.renders.start(project_id, owner=self.ctx.owner())
        return (*self.view(project_id, page), gr.Timer(active=True))

    @refusing
    def stop(self, project_id: str, page: int, how: str) -> tuple[Any, ...]:
        """Pause (resumable with Render) or cancel: both stop after the block being made."""
        self._need(project_id)
        renders = self.ctx.studio.renders
        owner = self.ctx.owner()
        renders.pause(project_id, owner=owner) if how == "pause" else renders.cancel(project_id, owner=owner)
        return self.view(project_id, page)

    def tick(self, project_id: str, page: int) -> tuple[Any, ...]:
        """The render timer runs only while a render is watched: each tick refreshes the status
        line, the page in view and the stop buttons; the tick that sees the end refreshes them
        once more and stops the timer, so an idle page asks the server nothing."""
        running = bool(project_id) and self.ctx.studio.renders.is_running(project_id)
        if not project_id:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.Timer(active=False)
        view = self.view(project_id, page)
        return view[2], view[3], view[9], view[10], gr.Timer(active=running)

    @staticmethod
    def _need(project_id: str | None) -> None:
        if not project_id:
            raise InvalidInput("Create or open a project first.")


def build(ctx: UIContext) -> Any:
    h = ProjectHandlers(ctx)
    b = BlockHandlers(ctx, h)
    x = ExportHandlers(ctx)
    with gr.Tab("Projects", id="projects") as tab:
        selected, ids, page = gr.State(""), gr.State([]), gr.State(0)
        export_job = gr.State("")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=260):
                picker = gr.Dropdown(label="Project", choices=[], elem_id="project-pick")
                with gr.Accordion("New project", open=False, elem_id="project-new"):
                    title = gr.Textbox(label="Title", elem_id="project-title")
                    voice = gr.Dropdown(label="Voice", choices=[], elem_id="project-voice")
                    language = gr.Dropdown(label="Language", choices=ctx.languages(), value="Auto")
                    create = gr.Button("Create project", variant="primary", elem_id="project-create")
                    upload = gr.File(label="…or import a file", type="filepath", elem_id="project-file",
                                     file_types=[".txt", ".md", ".srt", ".vtt", ".csv", ".json"])
                    fmt = gr.Dropdown(label="Format", choices=FORMATS, value=None, elem_id="project-format",
                                      info="Blank: from the file name")
                    do_import = gr.Button("Import", elem_id="project-import")
            with gr.Column(scale=3, visible=False, elem_id="project-panel") as panel:
                heading = gr.Markdown(elem_id="project-heading")
                status = gr.HTML(elem_id="project-status")
                with gr.Row(elem_classes="vb-buttons"):
                    render = gr.Button("Render", variant="primary", elem_id="project-render")
                    pause = gr.Button("Pause", elem_id="project-pause")
                    cancel = gr.Button("Stop", variant="stop", elem_id="project-cancel")
                table = gr.Dataframe(headers=HEADERS, value=[], interactive=False, wrap=True, elem_id="project-blocks",
                                     column_widths=["7%", "16%", "52%", "13%", "12%"])
                with gr.Row(elem_classes="vb-pager"):
                    prev = gr.Button("◀ Previous", size="sm", elem_id="project-prev")
                    label = gr.Markdown(elem_id="project-page")
                    nxt = gr.Button("Next ▶", size="sm", elem_id="project-next")
                with gr.Column(visible=False, variant="panel", elem_id="block-editor") as editor:
                    block_title = gr.Markdown(elem_id="block-title")
                    block_state = gr.HTML(elem_id="block-state")
                    player = gr.Audio(label="This block", type="filepath", interactive=False, visible=False,
                                      elem_id="block-player")
                    text = gr.Textbox(label="Text", lines=3, elem_id="block-text",
                                      info="To split, put the cursor where the new block should start.")
                    with gr.Row():
                        block_voice = gr.Dropdown(label="Voice", choices=[], elem_id="block-voice")
                        pause_s = gr.Number(label="Pause after (s)", minimum=0, maximum=30, elem_id="block-pause")
                        chapter = gr.Textbox(label="Chapter starts here", elem_id="block-chapter")
                    block_effect = gr.Dropdown(label="Effect", choices=effect_choices(), value="none",
                                               info="Applied to the block's take at once, no new render; the clean "
                                               "take is kept.", elem_id="block-effect")
                    with gr.Row(elem_classes="vb-buttons"):
                        save = gr.Button("Save block", variant="primary", elem_id="block-save")
                        split = gr.Button("Split at cursor", elem_id="block-split")
                        merge = gr.Button("Merge with next", elem_id="block-merge")
                    with gr.Row(elem_classes="vb-buttons"):
                        up = gr.Button("▲ Move up", elem_id="block-up")
                        down = gr.Button("▼ Move down", elem_id="block-down")
                        delete = gr.Button("Delete block", variant="stop", elem_id="block-delete")
                    sentences, sentence_h = sentence_editor.build(ctx, with_download=False, prefix="block-sentence",
                                                                  info=describe_take)
                    cursor = gr.Number(value=-1, visible=False)
                    block_id, take_id = gr.State(""), gr.State("")
                new_text = gr.Textbox(label="Add a block", placeholder="Text of a new block at the end", elem_id="block-new")
                add = gr.Button("Add block", elem_id="block-add")
                with gr.Accordion("Export", open=True, elem_id="project-export-box"):
                    with gr.Row():
                        export_fmt = gr.Dropdown(label="Export as", choices=AUDIO_CHOICES, value="m4b",
                                                 elem_id="project-export-format")
                        subs = gr.Dropdown(label="Subtitles", choices=SUBTITLE_CHOICES, value="srt",
                                           elem_id="project-export-subtitles")
                    with gr.Row():
                        level = gr.Dropdown(label="Subtitle timing", choices=LEVEL_CHOICES, value="sentence",
                                            elem_id="project-export-level")
                        use = gr.Dropdown(label="Loudness", choices=USE_CHOICES, value="audiobook",
                                          elem_id="project-export-use")
                    export = gr.Button("Export", elem_id="project-export")
                    export_line = gr.HTML(elem_id="project-export-status")
                    with gr.Row():
                        download = gr.DownloadButton("Download", visible=False, elem_id="project-download")
                        download_subs = gr.DownloadButton("Subtitles", visible=False, elem_id="project-download-subs")
        render_timer = gr.Timer(2.0, active=False)  # on only while a render is watched
        export_timer = gr.Timer(1.0, active=False)  # on only while an export is written

    view = [panel, heading, status, table, ids, page, label, prev, nxt, pause, cancel]
    parts = EditorParts(block_id, editor, block_title, text, block_voice, pause_s, chapter, block_state, player, take_id,
                        block_effect)
    both = [*view, *parts.outputs]
    light = LIGHT_QUEUE

    def then_sentences(event: Any) -> None:
        event.then(sentence_h.open, inputs=take_id, outputs=sentences.opened,
                   **ui_event("block_sentences"), **light)

    tab.select(lambda s: (h.choices(s), h.voices(), h.voices()), inputs=selected, outputs=[picker, voice, block_voice],
               **ui_event("projects_refresh"), **light)
    create.click(lambda *a: h.create(*a, b), inputs=[title, voice, language],
                 outputs=[picker, selected, *both, render_timer],
                 **ui_event("project_create"), **light)
    do_import.click(lambda *a: h.import_file(*a, b), inputs=[upload, fmt, voice, language],
                    outputs=[picker, selected, *both, render_timer], **ui_event("project_import"), **light)
    picker.input(lambda p: h.open(p, b), inputs=picker, outputs=[picker, selected, *both, render_timer],
                 **ui_event("project_open"), **light)
    prev.click(lambda p, n: h.turn(p, n, -1), inputs=[selected, page], outputs=view, **ui_event("project_prev"), **light)
    nxt.click(lambda p, n: h.turn(p, n, 1), inputs=[selected, page], outputs=view, **ui_event("project_next"), **light)
    then_sentences(table.select(b.pick, inputs=[ids, selected], outputs=parts.outputs, **ui_event("block_pick"), **light))
    then_sentences(save.click(b.save, inputs=[selected, block_id, text, block_voice, pause_s, chapter, block_effect, page],
                              outputs=both, **ui_event("block_save"), **light))
    then_sentences(split.click(b.split, inputs=[selected, block_id, text, cursor, page], outputs=both, js=CURSOR_JS,
                               **ui_event("block_split"), **light))
    then_sentences(merge.click(b.merge, inputs=[selected, block_id, page], outputs=both, **ui_event("block_merge"), **light))
    then_sentences(up.click(lambda p, i: b.move(p, i, -1), inputs=[selected, block_id], outputs=both,
                            **ui_event("block_up"), **light))
    then_sentences(down.click(lambda p, i: b.move(p, i, 1), inputs=[selected, block_id], outputs=both,
                              **ui_event("block_down"), **light))
    then_sentences(delete.click(b.delete, inputs=[selected, block_id, page], outputs=both, **ui_event("block_delete"), **light))
    then_sentences(add.click(b.add, inputs=[selected, new_text], outputs=[new_text, *both], **ui_event("block_add"), **light))
    changed = sentence_editor.wire(sentences, sentence_h, take_id, [player, block_state])
    for event in changed:
        event.success(b.after_sentence, inputs=[selected, block_id, page], outputs=[*view, text, block_state],
                      **ui_event("block_words"), **light)
    render.click(h.render, inputs=[selected, page], outputs=[*view, render_timer], **ui_event("project_render"), **light)
    pause.click(lambda p, n: h.stop(p, n, "pause"), inputs=[selected, page], outputs=view, **ui_event("project_pause"), **light)
    cancel.click(lambda p, n: h.stop(p, n, "cancel"), inputs=[selected, page], outputs=view,
                 **ui_event("project_cancel"), **light)
    render_timer.tick(h.tick, inputs=[selected, page], outputs=[status, table, pause, cancel, render_timer],
               **ui_event("project_tick"), **light, show_progress="hidden")
    export_outputs = [export_job, export_line, download, download_subs]
    export.click(x.start, inputs=[selected, export_fmt, subs, level, use], outputs=[*export_outputs, export_timer],
                 **ui_event("project_export"), **light)
    export_timer.tick(x.poll, inputs=[selected, export_job], outputs=[*export_outputs, export_timer],
               **ui_event("project_export_poll"), **light, show_progress="hidden")
    return tab
