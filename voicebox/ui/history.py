"""History tab: every saved take, searchable, filterable by profile, paged.

Selecting a row plays the take (a private temp copy) and offers download, delete and "use these
settings again", which fills the Generate tab with the take's profile, text and parameters.
The profile filter lists profiles from the statistics, so takes of deleted profiles (which keep
the profile's name) can still be found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from .. import take_effects
from ..engines.params import DEFAULT_PRESET, PRESETS
from ..records import Generation
from .common import (
    LIGHT_QUEUE,
    SELECTION_QUEUE,
    UIContext,
    escape,
    excerpt,
    facts_html,
    fmt_seconds,
    fmt_time,
    refusing,
    show_panel_on,
    ui_event,
)
from . import effects as effect_ui
from . import sentences as sentence_ui
from .generate import PROFILE_LANGUAGE, GenerateTab, details_html, download_name

PAGE_SIZE = 10
HEADERS = ["Time", "Profile", "Text", "Language", "Model", "Length"]
ALL_PROFILES = ""
EMPTY = "**Nothing here yet.** Takes you generate on the **Generate** tab are saved here automatically."
NO_MATCH = "**No takes match this search.** Clear the search box or pick *All profiles*."


def row(record: Generation) -> list[Any]:
    """One table row for a generation record."""
    return [
        fmt_time(record.created_at),
        record.profile_name,
        excerpt(record.text, 70),
        record.language,
        record.size,
        fmt_seconds(record.duration),
    ]


def stats_html(stats: dict[str, Any]) -> str:
    """Totals and the per-profile breakdown."""
    count = int(stats.get("count", 0))
    head = facts_html([("Takes", count), ("Total audio", fmt_seconds(stats.get("total_seconds")))])
    per = stats.get("per_profile") or []
    items = "".join(
        f"<li><strong>{escape(p.get('profile_name') or 'Unknown')}</strong> — {p['count']} "
        f"take{'s' if p['count'] != 1 else ''}, {escape(fmt_seconds(p.get('seconds')))}</li>"
        for p in per
    )
    breakdown = f'<ul class="vb-per-profile">{items}</ul>' if items else ""
    return f"{head}{breakdown}"


def filter_choices(stats: dict[str, Any]) -> list[tuple[str, str]]:
    """All profiles plus one entry per profile that has takes (deleted ones included)."""
    seen: dict[str, str] = {}
    for entry in stats.get("per_profile") or []:
        if entry.get("profile_id"):
            seen.setdefault(entry["profile_id"], entry.get("profile_name") or "Unknown")
    return [
        ("All profiles", ALL_PROFILES),
        *sorted(((n, i) for i, n in seen.items()), key=lambda c: c[0].casefold()),
    ]


class HistoryHandlers:
    """Callbacks of the History tab; each one is a thin call into ``Studio``."""

    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx

    @refusing
    def refresh(self, search: str | None, profile_id: str | None, page: int | None) -> tuple[Any, ...]:
        """Table, ids of its rows, page label, paging buttons, empty state, stats, filter choices.

        Returns:
            (table, ids, page, page_label, prev, next, empty, stats, filter)
        """
        studio, owner = self.ctx.studio, self.ctx.owner()
        stats = studio.history_stats(owner=owner)
        choices = filter_choices(stats)
        if profile_id not in [value for _, value in choices]:
            profile_id = ALL_PROFILES
        page = max(0, int(page or 0))
        listing = studio.list_history(
            search or None, profile_id or None, limit=PAGE_SIZE, offset=page * PAGE_SIZE, owner=owner
        )
        total = int(listing["total"])
        pages = max(1, -(-total // PAGE_SIZE))
        if page >= pages:  # e.g. the last row of the last page was deleted
            page = pages - 1
            listing = studio.list_history(
                search or None, profile_id or None, limit=PAGE_SIZE, offset=page * PAGE_SIZE, owner=owner
            )
        items = listing["items"]
        filtered = bool((search or "").strip() or profile_id)
        empty_text = NO_MATCH if (filtered and stats.get("count")) else EMPTY
        label = f"Page {page + 1} of {pages} · {total} take{'s' if total != 1 else ''}"
        return (
            gr.update(value=[row(r) for r in items], visible=bool(items)),
            [r.id for r in items],
            page,
            label,
            gr.update(interactive=page > 0),
            gr.update(interactive=page + 1 < pages),
            gr.update(value=empty_text, visible=not items),
            stats_html(stats),
            gr.update(choices=choices, value=profile_id),
        )

    @refusing
    def select(self, ids: list[str], evt: gr.SelectData) -> tuple[Any, ...]:
        """Open the clicked row: (selected id, detail visible, player, info, download)."""
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if not ids or index is None or not 0 <= int(index) < len(ids):
            return "", gr.update(visible=False), None, "", gr.update(value=None), gr.update(visible=False)
        return self.open(ids[int(index)])

    def open(self, generation_id: str) -> tuple[Any, ...]:
        """Detail view of one take (separate from :meth:`select` so tests can call it).

        Returns:
            (selected id, detail panel, player, info, download, delete confirmation hidden)
        """
        owner = self.ctx.owner()
        record = self.ctx.studio.get_generation(generation_id, owner=owner)
        saved = take_effects.played_file(self.ctx.studio, record)  # with its effect, if it has one
        path = self.ctx.temp.copy(saved, download_name(record), owner)
        info = take_info(record)
        return generation_id, gr.update(visible=True), path, info, gr.update(value=path), gr.update(visible=False)

    @refusing
    def delete(self, generation_id: str | None) -> tuple[Any, ...]:
        """Delete the open take; returns (selected id, detail hidden, player cleared, confirm hidden)."""
        if not generation_id:
            return "", gr.update(visible=False), None, gr.update(visible=False)
        take_effects.delete_take(self.ctx.studio, generation_id, owner=self.ctx.owner())
        gr.Info("The take was deleted.")
        return "", gr.update(visible=False), None, gr.update(visible=False)

    @refusing
    def reuse(self, generation_id: str | None, profile_value: str | None) -> tuple[Any, ...]:
        """Settings of the open take for the Generate tab, and a switch to that tab.

        Returns:
            (tabs, profile, text, language, size, preset, seed, temperature, top_k, top_p,
            repetition_penalty)
        """
        if not generation_id:
            return (gr.update(),) + (gr.update(),) * 10
        record = self.ctx.studio.get_generation(generation_id, owner=self.ctx.owner())
        params = record.params or {}
        base = PRESETS[DEFAULT_PRESET]
        choices = self.ctx.profile_choices()
        exists = any(value == record.profile_id for _, value in choices)
        if not exists:
            gr.Warning(
                f"The profile {escape(record.profile_name)} was deleted; choose another voice."
            )
        language = record.language or PROFILE_LANGUAGE
        if language not in self.ctx.languages():
            language = PROFILE_LANGUAGE
        return (
            gr.update(selected="generate"),
            gr.update(choices=choices, value=record.profile_id if exists else profile_value),
            record.text,
            language,
            record.size or gr.update(),
            gr.update(value=matching_preset(params)),
            "" if record.seed is None else str(record.seed),
            params.get("temperature", base["temperature"]),
            params.get("top_k", base["top_k"]),
            params.get("top_p", base["top_p"]),
            params.get("repetition_penalty", base["repetition_penalty"]),
        )


def take_info(record: Generation) -> str:
    """The open take's words, voice and time above its details (also after a sentence changes)."""
    return (
        f'<p class="vb-take-text">“{escape(record.text)}”</p>'
        f'<p class="vb-take-meta">{escape(record.profile_name)} · '
        f"{escape(fmt_time(record.created_at))}</p>" + details_html(record)
    )


def matching_preset(params: dict[str, Any]) -> str:
    """The preset whose values equal the take's, else the default (the sliders hold the values)."""
    for name, values in PRESETS.items():
        if all(abs(float(params.get(k, -1)) - float(v)) < 1e-9 for k, v in values.items()):
            return name
    return DEFAULT_PRESET


@dataclass
class HistoryTab:
    tab: gr.Tab
    handlers: HistoryHandlers


def build(ctx: UIContext, tabs: gr.Tabs, generate: GenerateTab) -> HistoryTab:
    """Lay out the History tab and wire its events (``generate`` receives "use again")."""
    h = HistoryHandlers(ctx)
    with gr.Tab("History", id="history") as tab:
        stats = gr.HTML(elem_id="history-stats")
        with gr.Row():
            search = gr.Textbox(
                placeholder="Search text or profile…",
                show_label=False,
                scale=3,
                elem_id="history-search",
                container=False,
            )
            profile_filter = gr.Dropdown(
                [("All profiles", ALL_PROFILES)],
                value=ALL_PROFILES,
                show_label=False,
                scale=2,
                elem_id="history-filter",
                container=False,
            )
        empty = gr.Markdown(EMPTY, elem_classes="vb-empty", elem_id="history-empty")
        table = gr.Dataframe(
            headers=HEADERS,
            value=[],
            interactive=False,
            wrap=True,
            visible=False,
            elem_id="history-table",
            column_widths=["16%", "14%", "38%", "11%", "9%", "12%"],
        )
        with gr.Row(elem_classes="vb-pager"):
            prev_btn = gr.Button("◀ Previous", size="sm", interactive=False, elem_id="history-prev")
            page_label = gr.Markdown("Page 1 of 1", elem_id="history-page")
            next_btn = gr.Button("Next ▶", size="sm", interactive=False, elem_id="history-next")
        with gr.Column(visible=False, variant="panel", elem_id="history-detail") as detail:
            player = gr.Audio(
                label="Take",
                type="filepath",
                interactive=False,
                elem_id="history-player",
                autoplay=True,
                buttons=["download"],
            )
            info = gr.HTML(elem_id="history-info")
            with gr.Row():
                download = gr.DownloadButton("Download WAV", size="md", elem_id="history-download")
                reuse = gr.Button("Use these settings again", size="md", elem_id="history-reuse")
                ask_delete = gr.Button("Delete take", variant="stop", size="md", elem_id="history-delete")
            effect_panel, effect_handlers = effect_ui.build(ctx, info=take_info, prefix="history-fx")
            sentences, sentence_handlers = sentence_ui.build(ctx, info=take_info)
            with gr.Column(
                visible=False, variant="panel", elem_id="history-confirm", elem_classes="vb-confirm"
            ) as confirm:
                gr.Markdown("**Delete this take?** Its audio and record are removed for good.")
                with gr.Row():
                    keep = gr.Button("Keep it", size="md", elem_id="history-keep")
                    delete = gr.Button(
                        "Delete permanently", variant="stop", size="md", elem_id="history-confirm-delete"
                    )
        ids = gr.State([])
        page = gr.State(0)
        selected = gr.State("")
        zero = gr.State(0)  # inside the Tab: a State directly under gr.Tabs shifts the tab order

    listing = [table, ids, page, page_label, prev_btn, next_btn, empty, stats, profile_filter]

    def wire_refresh(trigger: Any, name: str, page_source: Any) -> None:
        trigger(
            h.refresh,
            inputs=[search, profile_filter, page_source],
            outputs=listing,
            **ui_event(name),
            **LIGHT_QUEUE,
        )

    wire_refresh(tab.select, "history_refresh", page)
    wire_refresh(search.change, "history_search", zero)  # .change also catches paste
    wire_refresh(profile_filter.input, "history_filter", zero)

    def wire_page_step(button: Any, step: int, name: str) -> None:
        """Move ``page`` by ``step`` (never below the first), then list that page."""
        turn = button.click(
            lambda p: max(0, int(p) + step),
            inputs=page,
            outputs=page,
            **ui_event(f"history_{name}_page"),
            **LIGHT_QUEUE,
        )
        wire_refresh(turn.then, f"history_{name}_refresh", page)

    wire_page_step(prev_btn, -1, "prev")
    wire_page_step(next_btn, +1, "next")
    opened = table.select(
        h.select,
        inputs=ids,
        outputs=[selected, detail, player, info, download, confirm],
        **ui_event("history_open"),
        **SELECTION_QUEUE,
    )
    opened.then(
        sentence_handlers.open, inputs=selected, outputs=sentences.opened, **ui_event("sentences_open"), **LIGHT_QUEUE
    )
    sentence_ui.wire(sentences, sentence_handlers, selected, [player, info, download])
    opened.then(effect_handlers.open, inputs=selected, outputs=effect_panel.opened, **ui_event("history_fx_open"),
                **LIGHT_QUEUE)
    effect_ui.wire(effect_panel, effect_handlers, selected, [player, info, download])
    show_panel_on(ask_delete, keep, confirm, "history")
    deleted = delete.click(
        h.delete,
        inputs=selected,
        outputs=[selected, detail, player, confirm],
        **ui_event("history_delete"),
        **SELECTION_QUEUE,
    )
    wire_refresh(deleted.then, "history_after_delete", page)
    reuse.click(
        h.reuse,
        inputs=[selected, generate.profile],
        outputs=[tabs, *generate.settings_outputs],
        **ui_event("history_reuse"),
        **LIGHT_QUEUE,
    )
    return HistoryTab(tab, h)
