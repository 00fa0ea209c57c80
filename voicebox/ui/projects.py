"""Projects tab: long texts as blocks, rendered in the background, exported as one file.

Built to stay usable with hundreds of blocks: the block table is paged (``PAGE_SIZE`` rows), and
while a render runs a timer refreshes only the status line and the page in view, never the page.
Editing a block marks just that block for the next render; Render also resumes a paused one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ..errors import InvalidInput
from ..projects.importers import guess_format
from ..projects.records import Project
from .common import LIGHT_QUEUE, UIContext, escape, excerpt, refusing, ui_event
from .takes import status_html

PAGE_SIZE = 25
HEADERS = ["#", "Voice", "Text", "Status", "Chapter"]
FORMATS = [("Plain text", "text"), ("Markdown", "markdown"), ("SRT subtitles", "srt"), ("WebVTT", "vtt"),
           ("CSV (voice,text)", "csv"), ("Dialogue (Name: line)", "dialogue"), ("project.json of an export", "project")]
STATUS_WORDS = {"new": "to render", "stale": "edited: to render", "rendered": "rendered", "failed": "failed"}


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
    if r.state == "failed":
        return status_html(r.message or "The render stopped.", "error")
    if not project.blocks:
        return status_html("No blocks yet: add text below or import a file.")
    if waiting:
        return status_html(f"{waiting} of {len(project.blocks)} block(s) to render.")
    return status_html(f"All {len(project.blocks)} blocks are rendered: export when ready.", "ok")


class ProjectHandlers:
    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx

    @property
    def projects(self) -> Any:
        return self.ctx.studio.projects

    def choices(self, selected: str | None = None) -> Any:
        items = self.projects.store.all()
        options = [(f"{p.title} · {len(p.blocks)} blocks", p.id) for p in items]
        value = selected if any(v == selected for _, v in options) else None
        return gr.update(choices=options, value=value)

    def voices(self) -> Any:
        return gr.update(choices=[("Project's voice", "")] + self.ctx.profile_choices())

    def view(self, project_id: str | None, page: int = 0) -> tuple[Any, ...]:
        """(panel, heading, status, table, ids, page, page label, prev, next, editor hidden)."""
        if not project_id:
            return (gr.update(visible=False), "", "", gr.update(value=[]), [], 0, "", gr.update(interactive=False),
                    gr.update(interactive=False), gr.update(visible=False))
        project = self.projects.store.get(project_id)
        names = {pid: name for name, pid in self.ctx.profile_choices()}
        pages = max(1, -(-len(project.blocks) // PAGE_SIZE))
        page = max(0, min(int(page or 0), pages - 1))
        shown = project.blocks[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
        rows = [[page * PAGE_SIZE + i + 1, names.get(b.voice or project.voice, "—"), excerpt(b.text, 90),
                 STATUS_WORDS.get(b.status, b.status), b.chapter] for i, b in enumerate(shown)]
        voice = names.get(project.voice, "no voice chosen")
        return (gr.update(visible=True), f"### {escape(project.title)}\nVoice: {escape(voice)} · {len(project.blocks)} blocks",
                render_line(project), gr.update(value=rows), [b.id for b in shown], page,
                f"Page {page + 1} of {pages}", gr.update(interactive=page > 0), gr.update(interactive=page + 1 < pages),
                gr.update(visible=False))

    @refusing
    def create(self, title: str, voice: str | None, language: str | None) -> tuple[Any, ...]:
        project = self.projects.create(title, voice or "", language or "auto")
        gr.Info(f"Project {escape(project.title)} created. Add blocks, or import a file.")
        return (self.choices(project.id), project.id, *self.view(project.id))

    @refusing
    def import_file(self, path: str | None, fmt: str | None, voice: str | None, language: str | None) -> tuple[Any, ...]:
        if not path:
            raise InvalidInput("Choose a file to import first.")
        fmt = fmt or ("project" if path.lower().endswith(".json") else guess_format(Path(path).name))
        if not fmt:
            raise InvalidInput("Choose the file's format (text, Markdown, SRT, WebVTT, CSV or dialogue).")
        project = self.projects.import_file(Path(path).read_bytes(), fmt, "", voice or "", language or "auto")
        gr.Info(f"Imported {len(project.blocks)} blocks into {escape(project.title)}.")
        return (self.choices(project.id), project.id, *self.view(project.id))

    @refusing
    def open(self, project_id: str | None) -> tuple[Any, ...]:
        return (project_id or "", *self.view(project_id))

    @refusing
    def turn(self, project_id: str, page: int, step: int) -> tuple[Any, ...]:
        return self.view(project_id, int(page) + step)

    @refusing
    def pick_block(self, ids: list[str], project_id: str, evt: gr.SelectData) -> tuple[Any, ...]:
        """(block id, editor, text, voice, pause, chapter)."""
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if not ids or index is None or not 0 <= int(index) < len(ids):
            return "", gr.update(visible=False), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        block = self.projects.store.get(project_id).block(ids[int(index)])
        return block.id, gr.update(visible=True), block.text, block.voice, block.pause, block.chapter

    @refusing
    def save_block(self, project_id: str, block_id: str, text: str, voice: str | None, pause: Any, chapter: str,
                   page: int) -> tuple[Any, ...]:
        if not block_id:
            raise InvalidInput("Pick a block in the table first.")
        self.projects.update_block(project_id, block_id, text=text, voice=voice or "", pause=pause, chapter=chapter or "")
        gr.Info("Block saved.")
        return self.view(project_id, page)

    @refusing
    def delete_block(self, project_id: str, block_id: str, page: int) -> tuple[Any, ...]:
        if not block_id:
            raise InvalidInput("Pick a block in the table first.")
        self.projects.delete_block(project_id, block_id)
        gr.Info("Block deleted.")
        return self.view(project_id, page)

    @refusing
    def add_block(self, project_id: str, text: str, page: int) -> tuple[Any, ...]:
        if not project_id:
            raise InvalidInput("Create or open a project first.")
        project = self.projects.add_block(project_id, None, text=text)
        last_page = (len(project.blocks) - 1) // PAGE_SIZE
        return ("", *self.view(project_id, last_page))

    @refusing
    def render(self, project_id: str, page: int) -> tuple[Any, ...]:
        self._need(project_id)
        self.ctx.studio.renders.start(project_id)
        return self.view(project_id, page)

    @refusing
    def pause(self, project_id: str, page: int) -> tuple[Any, ...]:
        self._need(project_id)
        self.ctx.studio.renders.pause(project_id)
        return self.view(project_id, page)

    def tick(self, project_id: str, page: int, watching: bool) -> tuple[Any, Any, bool]:
        """While a render runs, and once more when it ends: the status line and the page in view
        (and whether to keep watching); otherwise nothing changes."""
        running = bool(project_id) and self.ctx.studio.renders.is_running(project_id)
        if not running and not watching:
            return gr.skip(), gr.skip(), False
        view = self.view(project_id, page)
        return view[2], view[3], running

    @refusing
    def export(self, project_id: str, fmt: str, subtitles: str) -> Any:
        self._need(project_id)
        files = self.projects.export(project_id, fmt, subtitles if fmt == "zip" else "none")  # waits: the tab shows a spinner
        copy = self.ctx.temp.copy(files[0], files[0].name)
        gr.Info(f"Exported {files[0].name}.")
        return gr.update(value=copy, visible=True)

    @staticmethod
    def _need(project_id: str | None) -> None:
        if not project_id:
            raise InvalidInput("Create or open a project first.")


def build(ctx: UIContext) -> Any:
    h = ProjectHandlers(ctx)
    with gr.Tab("Projects", id="projects") as tab:
        selected, block_id, ids, page = gr.State(""), gr.State(""), gr.State([]), gr.State(0)
        watching = gr.State(False)  # a render was seen running: refresh once more when it ends
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
                with gr.Row():
                    render = gr.Button("Render", variant="primary", elem_id="project-render")
                    pause = gr.Button("Pause", elem_id="project-pause")
                table = gr.Dataframe(headers=HEADERS, value=[], interactive=False, wrap=True, elem_id="project-blocks",
                                     column_widths=["7%", "16%", "52%", "13%", "12%"])
                with gr.Row(elem_classes="vb-pager"):
                    prev = gr.Button("◀ Previous", size="sm", elem_id="project-prev")
                    label = gr.Markdown(elem_id="project-page")
                    nxt = gr.Button("Next ▶", size="sm", elem_id="project-next")
                with gr.Column(visible=False, variant="panel", elem_id="block-editor") as editor:
                    text = gr.Textbox(label="Text", lines=3, elem_id="block-text")
                    with gr.Row():
                        block_voice = gr.Dropdown(label="Voice", choices=[], elem_id="block-voice")
                        pause_s = gr.Number(label="Pause after (s)", minimum=0, maximum=30, elem_id="block-pause")
                        chapter = gr.Textbox(label="Chapter starts here", elem_id="block-chapter")
                    with gr.Row():
                        save = gr.Button("Save block", variant="primary", elem_id="block-save")
                        delete = gr.Button("Delete block", variant="stop", elem_id="block-delete")
                new_text = gr.Textbox(label="Add a block", placeholder="Text of a new block at the end", elem_id="block-new")
                add = gr.Button("Add block", elem_id="block-add")
                with gr.Row():
                    export_fmt = gr.Dropdown(label="Export as", choices=["m4b", "mp3", "flac", "wav", "zip"],
                                             value="m4b", elem_id="project-export-format")
                    subs = gr.Dropdown(label="Subtitles (in the ZIP)", choices=["srt", "vtt", "none"], value="srt")
                    export = gr.Button("Export", elem_id="project-export")
                download = gr.DownloadButton("Download", visible=False, elem_id="project-download")
        timer = gr.Timer(2.0)

    view = [panel, heading, status, table, ids, page, label, prev, nxt, editor]
    tab.select(lambda s: (h.choices(s), h.voices(), h.voices()), inputs=selected, outputs=[picker, voice, block_voice],
               **ui_event("projects_refresh"), **LIGHT_QUEUE)
    create.click(h.create, inputs=[title, voice, language], outputs=[picker, selected, *view],
                 **ui_event("project_create"), **LIGHT_QUEUE)
    do_import.click(h.import_file, inputs=[upload, fmt, voice, language], outputs=[picker, selected, *view],
                    **ui_event("project_import"), **LIGHT_QUEUE)
    picker.input(h.open, inputs=picker, outputs=[selected, *view], **ui_event("project_open"), **LIGHT_QUEUE)
    prev.click(lambda p, n: h.turn(p, n, -1), inputs=[selected, page], outputs=view, **ui_event("project_prev"), **LIGHT_QUEUE)
    nxt.click(lambda p, n: h.turn(p, n, 1), inputs=[selected, page], outputs=view, **ui_event("project_next"), **LIGHT_QUEUE)
    table.select(h.pick_block, inputs=[ids, selected], outputs=[block_id, editor, text, block_voice, pause_s, chapter],
                 **ui_event("block_pick"), **LIGHT_QUEUE)
    save.click(h.save_block, inputs=[selected, block_id, text, block_voice, pause_s, chapter, page], outputs=view,
               **ui_event("block_save"), **LIGHT_QUEUE)
    delete.click(h.delete_block, inputs=[selected, block_id, page], outputs=view, **ui_event("block_delete"), **LIGHT_QUEUE)
    add.click(h.add_block, inputs=[selected, new_text, page], outputs=[new_text, *view], **ui_event("block_add"), **LIGHT_QUEUE)
    render.click(h.render, inputs=[selected, page], outputs=view, **ui_event("project_render"), **LIGHT_QUEUE).success(
        lambda: True, outputs=watching, **ui_event("project_watch"), **LIGHT_QUEUE)
    pause.click(h.pause, inputs=[selected, page], outputs=view, **ui_event("project_pause"), **LIGHT_QUEUE)
    timer.tick(h.tick, inputs=[selected, page, watching], outputs=[status, table, watching],
               **ui_event("project_tick"), **LIGHT_QUEUE, show_progress="hidden")
    export.click(h.export, inputs=[selected, export_fmt, subs], outputs=download, **ui_event("project_export"), **LIGHT_QUEUE)
    return tab
