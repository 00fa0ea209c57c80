"""The sentences of an open take, in the History tab: listen to one, choose another take of it,
or make a new take (new seed, edited words) without touching the rest.

One editor for the chosen sentence rather than a row of controls per sentence: it reads the same
on a phone, and the list of every sentence with its badge is already in the take's details.
Making a take waits for the model (``MODEL_QUEUE``); choosing one only rebuilds the joined audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..errors import InvalidInput
from ..records import Chunk, Generation
from ..take_effects import played_file
from .common import LIGHT_QUEUE, MODEL_QUEUE, UIContext, excerpt, refusing, ui_event
from .takes import download_name

NO_SENTENCES = "This take was saved before sentences were kept separately; generate it again to edit them."


def sentence_choices(record: Generation) -> list[tuple[str, int]]:
    return [(f"{c.index + 1}. {excerpt(c.text, 60)}", c.index) for c in record.chunks if c.takes]


def take_choices(chunk: Chunk) -> list[tuple[str, int]]:
    """"Take 2 · passed · score 0.91 · seed 42" for each take of a sentence."""
    out = []
    for number, take in enumerate(chunk.takes):
        verdict = {True: "passed", False: "did not pass", None: "not checked"}[take.passed]
        score = f" · score {take.score:.2f}" if take.score is not None else ""
        used = " (in use)" if number == chunk.used_take else ""
        out.append((f"Take {number + 1} · {verdict}{score} · seed {take.seed}{used}", number))
    return out


class SentenceHandlers:
    """Callbacks of the sentence editor; each one is a thin call into ``Studio``."""

    def __init__(self, ctx: UIContext, with_download: bool = True, info: Any = None) -> None:
        self.ctx = ctx
        self.with_download = with_download  # the History tab has a download button to refresh
        #: How the take's details are shown where the editor lives (History adds its text and time).
        self.info = info

    @refusing
    def open(self, generation_id: str | None) -> tuple[Any, ...]:
        """The editor for a newly opened take: (box, sentence picker, player, takes, words, seed)."""
        if not generation_id:
            return gr.update(visible=False), gr.update(choices=[], value=None), None, gr.update(choices=[]), "", ""
        record = self.ctx.studio.get_generation(generation_id, owner=self.ctx.owner())
        choices = sentence_choices(record)
        if not choices:
            return gr.update(visible=False), gr.update(choices=[], value=None), None, gr.update(choices=[]), "", ""
        return (gr.update(visible=True), gr.update(choices=choices, value=choices[0][1]),
                *self._sentence(record, choices[0][1]))

    def _sentence(self, record: Generation, index: int) -> tuple[Any, ...]:
        """(player, takes, words, seed) for one sentence."""
        chunk = record.chunks[int(index)]
        take = chunk.takes[chunk.used_take]
        name = f"{download_name(record)[:-4]}-sentence-{chunk.index + 1}.wav"
        source = self.ctx.studio.store.resolve_file(take.file, record.owner)
        path = self.ctx.temp.copy(source, name, record.owner)
        return path, gr.update(choices=take_choices(chunk), value=chunk.used_take), chunk.text, ""

    @refusing
    def show(self, generation_id: str | None, index: Any) -> tuple[Any, ...]:
        """Another sentence was picked: its player, takes and words. The seed box is left as
        typed: a dropdown can report one pick twice, and a late second answer must not wipe a
        seed typed in between (seen under load: the re-take then used a random seed)."""
        if not generation_id or index in (None, ""):
            return gr.skip(), gr.skip(), gr.skip()
        record = self.ctx.studio.get_generation(generation_id, owner=self.ctx.owner())
        return self._sentence(record, index)[:3]

    @refusing
    def choose(self, generation_id: str | None, index: Any, take: Any) -> tuple[Any, ...]:
        """Use the picked take: (take player, details[, download], sentence player, takes, words, seed)."""
        owner = self.ctx.owner()
        record = self.ctx.studio.get_generation(self._id(generation_id), owner=owner)
        if take in (None, "") or int(take) == record.chunks[int(index)].used_take:
            return (gr.skip(),) * (7 if self.with_download else 6)
        record = self.ctx.studio.choose_take(record.id, index, take, owner=owner)
        gr.Info(f"Sentence {int(index) + 1} now uses take {int(take) + 1}.")
        return (*self._take(record), *self._sentence(record, index))

    @refusing
    def retake(self, generation_id: str | None, index: Any, words: str, seed: str) -> tuple[Any, ...]:
        """A new take of the sentence (edited words and a seed when given): same outputs as choose."""
        generation_id = self._id(generation_id)
        if index in (None, ""):
            raise InvalidInput("Choose a sentence first.")
        seed_value = None
        if str(seed or "").strip():
            try:
                seed_value = int(str(seed).strip())
            except ValueError:
                raise InvalidInput("The seed must be a whole number, or empty for a new one.") from None
        record = self.ctx.studio.retake_sentence(generation_id, index, text=words, seed=seed_value,
                                                 owner=self.ctx.owner())
        take = record.chunks[int(index)].takes[-1]
        verdict = {True: "It passed the checks.", False: "It did not pass the checks.", None: ""}[take.passed]
        gr.Info(f"Sentence {int(index) + 1}: take {len(record.chunks[int(index)].takes)} is in use. {verdict}")
        return (*self._take(record), *self._sentence(record, index))

    def _take(self, record: Generation) -> tuple[Any, ...]:
        """The whole take's player, details (and download) after a change."""
        from .takes import details_html

        saved = played_file(self.ctx.studio, record)  # a take with an effect plays with it
        path = self.ctx.temp.copy(saved, download_name(record), record.owner)
        details = self.info(record) if self.info is not None else details_html(record)
        return (path, details, gr.update(value=path))[: 3 if self.with_download else 2]

    @staticmethod
    def _id(generation_id: str | None) -> str:
        if not generation_id:
            raise InvalidInput("Open a take in the list first.")
        return generation_id


@dataclass
class SentenceEditor:
    box: Any
    picker: Any
    player: Any
    takes: Any
    words: Any
    seed: Any
    retake: Any
    prefix: str = "sentence"

    @property
    def opened(self) -> list[Any]:
        return [self.box, self.picker, self.player, self.takes, self.words, self.seed]


def build(ctx: UIContext, with_download: bool = True, prefix: str = "sentence",
          info: Any = None) -> tuple[SentenceEditor, SentenceHandlers]:
    """Lay out the editor (in the History detail, or below the Generate tab's result); wire it with
    :func:`wire`. ``with_download``: the take's outputs include a download button; ``prefix``
    starts every element id (one editor per tab)."""
    with gr.Column(visible=False, elem_id=f"{prefix}-editor") as box:
        gr.Markdown("#### Sentences\nListen to one sentence, use another take of it, or make a new one. "
                    "The rest of the take stays as it is.", elem_classes="vb-note")
        picker = gr.Dropdown(label="Sentence", choices=[], elem_id=f"{prefix}-pick")
        player = gr.Audio(label="This sentence", type="filepath", interactive=False, elem_id=f"{prefix}-player")
        takes = gr.Dropdown(label="Take in use", choices=[], elem_id=f"{prefix}-takes")
        with gr.Row():
            words = gr.Textbox(label="Words", lines=2, scale=3, elem_id=f"{prefix}-words")
            seed = gr.Textbox(label="Seed", placeholder="new", scale=1, elem_id=f"{prefix}-seed")
        retake = gr.Button("Make a new take of this sentence", elem_id=f"{prefix}-retake")
    return SentenceEditor(box, picker, player, takes, words, seed, retake, prefix.replace("-", "_")), SentenceHandlers(ctx, with_download, info)


def wire(editor: SentenceEditor, handlers: SentenceHandlers, selected: Any, take_outputs: list[Any]) -> list[Any]:
    """``take_outputs``: the take's (player, details[, download]) to refresh after a change.
    Returns the events that change the take (choose, re-take), for the caller to follow up."""
    changed = [*take_outputs, editor.player, editor.takes, editor.words, editor.seed]
    editor.picker.input(
        handlers.show, inputs=[selected, editor.picker],
        outputs=[editor.player, editor.takes, editor.words], **ui_event(f"{editor.prefix}_show"), **LIGHT_QUEUE,
    )
    chosen = editor.takes.input(
        handlers.choose, inputs=[selected, editor.picker, editor.takes], outputs=changed,
        **ui_event(f"{editor.prefix}_choose"), **LIGHT_QUEUE,
    )
    remade = editor.retake.click(
        handlers.retake, inputs=[selected, editor.picker, editor.words, editor.seed], outputs=changed,
        **ui_event(f"{editor.prefix}_retake"), **MODEL_QUEUE,
    )
    return [chosen, remade]
