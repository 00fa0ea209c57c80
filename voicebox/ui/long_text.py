"""The Generate tab's long-text handling: past one take's limit the box offers to split the text,
keeps the first part and holds the rest below, to be moved up part by part.

Nothing is ever cut silently: the person's line breaks are kept, parts end at a paragraph or a
sentence (:func:`voicebox.engines.text_split.first_part`), and what waits is shown.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..engines.params import TEXT_MAX_CHARS
from ..engines.text_split import first_part
from ..errors import InvalidInput
from .common import refusing


class LongTextHandlers:
    """Callbacks for a text longer than one take (mixed into the Generate tab's handlers)."""

    def length_notice(self, text: str | None) -> Any:
        """Show the "split it" panel while the text is longer than one take."""
        return gr.update(visible=len(text or "") > TEXT_MAX_CHARS)

    @refusing
    def split(self, text: str | None, waiting: str | None) -> tuple[Any, Any, Any, Any]:
        """Keep the first part in the box; the rest goes before anything already waiting.

        Returns:
            (text, waiting text, split panel, waiting panel)
        """
        first, rest = first_part(text or "", TEXT_MAX_CHARS)
        queued = "\n\n".join(part for part in (rest, (waiting or "").strip()) if part)
        gr.Info(f"Split: {len(first):,} characters to generate now, {len(queued):,} waiting below.")
        return first, queued, gr.update(visible=False), gr.update(visible=bool(queued))

    @refusing
    def next_part(self, waiting: str | None) -> tuple[Any, Any, Any]:
        """Move the next part of the waiting text into the box. Returns (text, waiting, panel)."""
        first, rest = first_part(waiting or "", TEXT_MAX_CHARS)
        if not first:
            raise InvalidInput("Nothing is waiting: every part has been moved up.")
        return first, rest, gr.update(visible=bool(rest))
