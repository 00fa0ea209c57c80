"""Batch tab: many clips at once, without a project, handed back as one ZIP.

A person pastes lines (one clip per non-empty line) or uploads a ``.txt`` / ``.csv`` file, picks a
default voice, and presses "Make clips"; :class:`voicebox.batch.Batches` makes them in the
background, as ``POST /batch`` does. Why the tab reads the lines itself instead of handing raw
text to the service: a refusal must name the *line* a person wrote (blank lines make item numbers
and line numbers differ), and a ``Name:`` that matches no profile must be refused, not spoken.

The lines follow the dialogue importer's rule for what a name is (:mod:`voicebox.projects.importers`)
but not its layout: in a batch every line is its own clip, so a line without a name is spoken in
the default voice instead of continuing the line above. A CSV goes through the project importer's
CSV reader (``voice,text``, optional ``language``; ``pause`` and ``chapter`` mean nothing here).

Progress comes from a ``gr.Timer`` that runs only while a batch this page started is running:
"Make clips" switches it on and the tick that sees the end switches it off, so an idle page never
polls the server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from ..batch import MAX_ITEMS, BatchState
from ..errors import InvalidInput, NotFound
from ..projects.csv_in import parse_csv
from ..projects.importers import _SPEAKER, NO_TEXT, decode, squash
from .common import LIGHT_QUEUE, UIContext, excerpt, refusing, ui_event, user_message
from .takes import status_html

#: A text file larger than this is refused before it is read (500 clips of 5,000 characters fit).
MAX_FILE_BYTES = 4 * 1024 * 1024
#: How often the progress line is refreshed while a batch runs, in seconds.
TICK_SECONDS = 1.0
PLACEHOLDER = "One clip per line.\nKeeper: A line in the Keeper's voice.\nA line in the default voice."
IDLE = ("Paste lines, or choose a file (.txt with one line per clip, or .csv with voice,text columns: "
        "it is used instead of the lines), then press Make clips. Each clip becomes one WAV in a ZIP.")
_ITEM = re.compile(r"^Item (\d+): ")


@dataclass(frozen=True)
class Line:
    """One clip as a person wrote it: where (line number), what, and in which voice (a profile's
    name, so that batch.json in the ZIP reads as the lines did)."""

    line: int
    text: str
    voice: str
    language: str | None = None

    def item(self) -> dict[str, Any]:
        return {"text": self.text, "voice": self.voice, "language": self.language}


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


class Voices:
    """The profiles a batch may use, matched by name as the service matches them (case and
    spacing ignored), and the default voice (a profile id from the picker)."""

    def __init__(self, choices: Iterable[tuple[str, str]], default: str | None) -> None:
        self.choices = list(choices)
        self.by_name = {_key(name): name for name, _ in self.choices}
        self.default = next((name for name, pid in self.choices if pid == default), None)

    def named(self, name: str, line: int) -> str:
        found = self.by_name.get(_key(name))
        if found is None:
            name = " ".join(name.split())
            known = ", ".join(n for n, _ in self.choices[:8]) or "none yet"
            example = self.choices[0][0] if self.choices else "Anna"
            raise InvalidInput(
                f"Line {line}: no voice profile is named {name!r} (voices: {known}). "
                f"To speak the colon, start the line with a voice's name, e.g. '{example}: {name}: …'."
            )
        return found

    def fallback(self, line: int) -> str:
        if self.default is None:
            raise InvalidInput(
                f"Line {line} names no voice: choose a default voice, or start the line with a "
                "profile's name and a colon, e.g. 'Keeper: Hello.'"
            )
        return self.default


def parse_lines(text: str, voices: Voices) -> list[Line]:
    """One clip per non-empty line; ``Name: text`` speaks in the profile called Name."""
    out: list[Line] = []
    for number, raw in enumerate(decode(text or "").split("\n"), start=1):
        if not raw.strip():
            continue
        match = _SPEAKER.fullmatch(raw)
        if match:
            voice, said = voices.named(match.group(1), number), squash(match.group(2))
            if not said:
                raise InvalidInput(f"Line {number}: {match.group(1).strip()!r} has nothing to say after the colon.")
            out.append(Line(number, said, voice))
        else:
            out.append(Line(number, squash(raw), voices.fallback(number)))
    return _sized(out, "The box has no lines to speak: paste one line per clip.")


def parse_csv_lines(text: str, voices: Voices) -> list[Line]:
    """A ``voice,text`` CSV (header row first); an empty voice cell takes the default voice."""
    blocks = parse_csv(text).blocks
    lines = [Line(b.line, b.text, voices.named(b.voice, b.line) if b.voice.strip() else voices.fallback(b.line),
                  b.language or None) for b in blocks]
    return _sized(lines, NO_TEXT)


def read_file(path: str | Path, voices: Voices) -> list[Line]:
    """The clips of an uploaded ``.txt`` (lines, as in the box) or ``.csv`` (``voice,text``)."""
    file = Path(path)
    kind = file.suffix.lower()
    if kind not in (".txt", ".csv"):
        raise InvalidInput(f"{file.name} is not a .txt or .csv file: save the lines as plain text or CSV.")
    size = file.stat().st_size if file.is_file() else 0
    if size > MAX_FILE_BYTES:
        raise InvalidInput(f"{file.name} is {size / 1048576:.1f} MB; a batch file may be at most "
                           f"{MAX_FILE_BYTES // 1048576} MB. Split it into several batches.")
    text = decode(file.read_bytes()) if size else ""
    if not text.strip():
        raise InvalidInput(f"{file.name} is empty: {NO_TEXT[0].lower()}{NO_TEXT[1:]}")
    return parse_csv_lines(text, voices) if kind == ".csv" else parse_lines(text, voices)


def _sized(lines: list[Line], empty: str) -> list[Line]:
    if not lines:
        raise InvalidInput(empty)
    if len(lines) > MAX_ITEMS:
        raise InvalidInput(f"That is {len(lines)} clips; a batch makes at most {MAX_ITEMS}. "
                           "Split the lines into several batches.")
    return lines


def progress_line(state: BatchState) -> str:
    """Where the batch stands, in words: done of total and the clip being made, or how it ended."""
    failed = sum(1 for item in state.items if item.status == "failed")
    if state.state == "running":
        current = next((item for item in state.items if item.status == "running"), None)
        what = f": “{excerpt(current.text, 60)}”" if current else "…"
        number = current.index if current else min(state.done + 1, state.total)
        extra = f" · {failed} failed" if failed else ""
        return status_html(f"{state.done} of {state.total} done{extra} · making clip {number}{what}")
    if state.state == "done" and not failed:
        return status_html(f"All {state.total} clips are made: download the ZIP.", "ok")
    if state.state == "done":
        return status_html(f"{state.done} of {state.total} clips made, {failed} failed (batch.json in the ZIP "
                           "says why): download the ZIP.", "warn")
    if state.state == "cancelled":
        kept = f" {state.done} clip(s) were made: download them below." if state.zip_ready else ""
        return status_html(f"Cancelled after {state.done} of {state.total}.{kept}", "warn")
    return status_html(state.message or "The batch failed.", "error")


class BatchHandlers:
    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx

    @property
    def batches(self) -> Any:
        return self.ctx.studio.batches

    def voices(self, current: str | None) -> Any:
        """The default-voice picker: every profile, keeping the choice while it still exists."""
        choices = self.ctx.profile_choices()
        value = current if any(pid == current for _, pid in choices) else (choices[0][1] if choices else None)
        return gr.update(choices=choices, value=value)

    @refusing
    def make(self, voice: str | None, text: str, file: str | None, batch_id: str) -> tuple[Any, ...]:
        """Read the lines (the file when one is chosen), start the batch; (id, status, cancel,
        download, timer). Any refusal leaves the page as it was."""
        if batch_id and self._running(batch_id):
            raise InvalidInput("A batch is still running: wait for it, or cancel it first.")
        voices = Voices(self.ctx.profile_choices(), voice)
        if not voices.choices:
            raise InvalidInput("There are no voice profiles yet: create one on the Profiles tab first.")
        lines = read_file(file, voices) if file else parse_lines(text, voices)
        try:
            state = self.batches.start([line.item() for line in lines], owner=self.ctx.owner())
        except InvalidInput as error:  # the service counts items; a person counts lines
            message = _ITEM.sub(lambda m: f"Line {lines[int(m.group(1)) - 1].line}: ", error.message)
            raise InvalidInput(message) from None
        return (state.id, progress_line(state), gr.update(visible=True, interactive=True),
                gr.update(visible=False, value=None), gr.Timer(active=True))

    def tick(self, batch_id: str) -> tuple[Any, ...]:
        """(status, cancel, download, timer): progress while it runs; at the end the ZIP, and the
        timer off."""
        if not batch_id:
            return gr.skip(), gr.skip(), gr.skip(), gr.Timer(active=False)
        try:
            state = self.batches.get(batch_id, owner=self.ctx.owner())
        except NotFound:
            return (status_html("This batch is gone.", "error"), gr.update(visible=False), gr.skip(),
                    gr.Timer(active=False))
        if state.state == "running":
            return progress_line(state), gr.skip(), gr.skip(), gr.skip()
        try:
            download = self._download(state)
        except Exception as error:  # noqa: BLE001 - a timer's event must not leave an "Error" badge
            return (status_html(user_message(error), "error"), gr.update(visible=False),
                    gr.update(visible=False, value=None), gr.Timer(active=False))
        return progress_line(state), gr.update(visible=False), download, gr.Timer(active=False)

    @refusing
    def cancel(self, batch_id: str) -> tuple[Any, ...]:
        """Ask the batch to stop; the timer's next ticks show it ending (the clip being made is dropped)."""
        if not batch_id or not self._running(batch_id):
            raise InvalidInput("No batch is running.")
        self.batches.cancel(batch_id, owner=self.ctx.owner())
        return status_html("Cancelling: the clip being made is dropped…", "warn"), gr.update(interactive=False)

    def _download(self, state: BatchState) -> Any:
        if not state.zip_ready:
            return gr.update(visible=False, value=None)
        zipped = self.batches.zip_path(state.id, owner=state.owner)
        copy = self.ctx.temp.copy(zipped, f"voicebox-batch-{state.id[:8]}.zip", state.owner)
        return gr.update(value=copy, visible=True)

    def _running(self, batch_id: str) -> bool:
        try:
            return self.batches.get(batch_id, owner=self.ctx.owner()).state == "running"
        except NotFound:
            return False


def build(ctx: UIContext) -> Any:
    h = BatchHandlers(ctx)
    with gr.Tab("Batch", id="batch") as tab:
        batch_id = gr.State("")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=260):
                text = gr.Textbox(label="Lines", lines=8, max_lines=20, placeholder=PLACEHOLDER, elem_id="batch-lines",
                                  info="One clip per line. 'Name: text' speaks in the profile called Name.")
                upload = gr.File(label="…or a .txt or .csv file",
                                 type="filepath", file_types=[".txt", ".csv"], height=170, elem_id="batch-file")
            with gr.Column(scale=2, min_width=260):
                voice = gr.Dropdown(label="Default voice", choices=[], elem_id="batch-voice",
                                    info="For lines that name no voice")
                make = gr.Button("Make clips", variant="primary", elem_id="batch-make")
                status = gr.HTML(status_html(IDLE), elem_id="batch-status")
                with gr.Row():
                    cancel = gr.Button("Cancel", variant="stop", visible=False, elem_id="batch-cancel")
                    download = gr.DownloadButton("Download (ZIP)", visible=False, variant="primary",
                                                 elem_id="batch-download")
        timer = gr.Timer(TICK_SECONDS, active=False)

    tab.select(h.voices, inputs=voice, outputs=voice, **ui_event("batch_voices"), **LIGHT_QUEUE)
    make.click(h.make, inputs=[voice, text, upload, batch_id], outputs=[batch_id, status, cancel, download, timer],
               **ui_event("batch_make"), **LIGHT_QUEUE)
    timer.tick(h.tick, inputs=batch_id, outputs=[status, cancel, download, timer],
               **ui_event("batch_tick"), **LIGHT_QUEUE, show_progress="hidden")
    cancel.click(h.cancel, inputs=batch_id, outputs=[status, cancel], **ui_event("batch_cancel"), **LIGHT_QUEUE)
    return tab

