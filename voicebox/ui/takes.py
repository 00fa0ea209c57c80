"""What the Generate tab says about a take, apart from its layout and events.

Stage labels and progress fractions, the status line, the take's facts, its download name, the
waiting line, the long-text notice, and the conversion of the tab's values into the options
``Studio`` takes. Kept apart so the History tab and the ``gradio_client`` API share them without
importing the Generate tab's wiring.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import gradio as gr

from ..engines.params import DEFAULT_PRESET, SEED_MAX, TEXT_MAX_CHARS
from ..errors import InvalidInput
from ..records import Generation, GenerationRequest
from .common import MODEL_QUEUE, escape, excerpt, facts_html, fmt_seconds, safe_filename

#: Dropdown value meaning "use the profile's own language".
PROFILE_LANGUAGE = "profile"
EXAMPLES_FILE = Path(__file__).resolve().parents[2] / "assets" / "examples.txt"
NO_PROFILES = (
    "**No voice profiles yet.** Create one on the **Profiles** tab and add a sample of the voice; "
    "it will appear here."
)

READY = "Ready. Pick a voice, type some text and press Generate."
CANCELLED = "Cancelled — nothing was saved."
TOO_LONG = (
    f"**This text is longer than one take ({TEXT_MAX_CHARS:,} characters).** Nothing was cut. "
    "Split it: the first part (ending at a sentence) stays above to generate now, and the rest waits "
    "below for the next take."
)

STAGE_LABELS = {
    "loading model": "Loading the model…",
    "building voice": "Building the voice…",
    "saving": "Saving the take…",
}


def stage_label(stage: str, done: int, total: int, detail: str = "") -> str:
    """Human words for a stage: "Generating chunk i of N…", "Checking sentence i of N…",
    "Sentence i of N, take 2 — the words did not match…"."""
    number = min(done + 1, total)
    if stage == "generating":
        return f"Generating chunk {number} of {total}…"
    if stage == "checking":
        return f"Checking sentence {number} of {total}…"
    if stage == "retaking":
        return f"Sentence {number} of {total}, {detail or 'another take'}…"
    return STAGE_LABELS.get(stage, stage.capitalize() + "…")


def stage_fraction(stage: str, done: int, total: int) -> float:
    """Overall progress 0..1: loading and voice take the first 10 %, chunks the next 85 %."""
    if stage == "loading model":
        return 0.02
    if stage == "building voice":
        return 0.08
    if stage == "saving":
        return 0.97
    if stage in ("checking", "retaking"):
        return 0.6 + 0.35 * (done / max(total, 1))
    return 0.1 + 0.5 * (done / max(total, 1))


def char_count_js() -> str:
    """Client-side character counter (no server round trip per keystroke); past the limit it says
    so, since the box keeps every character instead of cutting the text."""
    return (
        "(t) => { const n = (t || '').length; "
        f"const over = n - {TEXT_MAX_CHARS}; "
        f"const count = n.toLocaleString('en-US') + ' / {TEXT_MAX_CHARS:,} characters'; "
        "return over > 0 ? '⚠️ ' + count + ' — ' + over.toLocaleString('en-US') + "
        "' over the limit of one take' : count; }"
    )


def waiting_label(ahead: int) -> str:
    """The status while the take waits for the model: how many jobs are ahead of it."""
    if ahead <= 0:
        return "Starting…"
    place = {1: "1st", 2: "2nd", 3: "3rd"}.get(ahead, f"{ahead}th")
    return f"Waiting for another take to finish — you are {place} in line."


def jobs_ahead(blocks: Any) -> int:
    """Model jobs running or waiting in the queue now (0 when that cannot be read).

    Reads Gradio's queue for the ``model`` concurrency group, the one every model call shares,
    so takes of other people, transcriptions and model loads all count.
    """
    try:
        group = blocks._queue.event_queue_per_concurrency_id.get(MODEL_QUEUE["concurrency_id"])
        if group is None:
            return 0
        return int(group.current_concurrency) + len(group.queue)
    except Exception:  # Gradio's internals moved: say "Starting…" rather than fail the click
        return 0


def load_examples(path: Path = EXAMPLES_FILE) -> list[str]:
    """Example texts: paragraphs of ``assets/examples.txt`` (blank-line separated)."""
    try:
        content = path.read_text(encoding="utf-8")
    except OSError:
        return []
    return [
        " ".join(p.split()) for p in content.split("\n\n") if p.strip() and not p.lstrip().startswith("#")
    ]


def details_html(record: Generation) -> str:
    """The facts about a take, as a compact grid (numbers only come from the record)."""
    timings = record.timings or {}
    cache = "from cache" if record.cache_hit else "built now"
    cells = [
        ("Seed", str(record.seed)),
        ("Duration", fmt_seconds(record.duration)),
        ("Voice", cache),
        ("Model", f"{record.size} · {record.mode}"),
        ("Language", str(record.language)),
    ]
    if record.chunks:  # takes saved before chunks were recorded only counted them
        cut = sum(1 for c in record.chunks if c.status == "incomplete")
        review = sum(1 for c in record.chunks if c.status == "needs_review")
        notes = [f"{cut} cut off"] * bool(cut) + [f"{review} to review"] * bool(review)
        cells.append(("Chunks", f"{record.chunk_count}" + (f" ({', '.join(notes)})" if notes else "")))
    if record.effects is not None:  # the clean take is kept; the players play this
        cells.append(("Effect", record.effects.title()))
    timing_names = [
        ("prompt", "voice"),
        ("first_audio", "first audio"),
        ("generate", "generate"),
        ("decode", "decode"),
        ("total", "total"),
    ]
    timing_text = " · ".join(
        f"{label} {float(timings[key]):.2f} s" for key, label in timing_names if key in timings
    )
    return (
        f'{facts_html(cells)}<p class="vb-timings">Timings: {escape(timing_text)}</p>'
        + sentences_html(record)
    )


CHECK_BADGES = {True: ("passed", "Passed every check"), False: ("failed", "Did not pass")}


def sentences_html(record: Generation) -> str:
    """One row per sentence when the take was checked: its words, a badge, the takes made and
    what failed (the numbers are in the title, shown on hover)."""
    if record.quality == "off" or not any(c.takes for c in record.chunks):
        return ""
    rows = []
    for chunk in record.chunks:
        take = chunk.takes[chunk.used_take] if chunk.takes else None
        if take is None or take.passed is None:
            continue
        kind, label = CHECK_BADGES[bool(take.passed)]
        checks = take.scores.get("checks", [])
        numbers = "; ".join(
            f"{c['name']} {c['value']:.2f} (limit {c['threshold']:.2f})" for c in checks if c.get("value") is not None
        )
        failed = [c.get("detail") or c["name"] for c in checks if not c.get("passed", True)]
        why = f" — {failed[0]}" if failed else ""
        tries = f"take {chunk.used_take + 1} of {len(chunk.takes)}"
        rows.append(
            f'<li class="vb-sentence"><span class="vb-badge vb-badge-{kind}" title="{escape(numbers)}">'
            f"{label}</span> <strong>{chunk.index + 1}.</strong> {escape(excerpt(chunk.text, 90))} "
            f'<span class="vb-note">({tries}{escape(why)})</span></li>'
        )
    return f'<ol class="vb-sentences">{"".join(rows)}</ol>' if rows else ""


def download_name(record: Generation) -> str:
    """``voicebox-<profile>-<YYYYmmdd-HHMMSS>.wav``: a name that says what the file is."""
    stamp = record.created_at
    try:
        stamp = datetime.fromisoformat(stamp).astimezone().strftime("%Y%m%d-%H%M%S")
    except ValueError:
        stamp = (record.id or "take")[:8]
    return safe_filename(f"voicebox-{record.profile_name or 'voice'}-{stamp}.wav")


def status_html(text: str, kind: str = "info") -> str:
    return f'<div class="vb-status vb-status-{kind}">{escape(text)}</div>'


def take_request(profile_id: str | None, text: str, *values: Any) -> GenerationRequest:
    """The request of one take from the Generate tab: a voice must be picked; ``values`` are
    :func:`generation_request`'s options in order."""
    if not profile_id:
        raise InvalidInput("Choose a voice profile first (create one on the Profiles tab).")
    return generation_request(profile_id, text, *values)


def generation_request(
    profile_id: str,
    text: str,
    language: str | None,
    size: str | None,
    preset: str | None,
    seed: Any,
    temperature: Any,
    top_k: Any,
    top_p: Any,
    repetition_penalty: Any,
    style: Any = None,
) -> GenerationRequest:
    """UI values -> the one request type (blank seed means random, blank language the profile's;
    ``style`` is a built-in voice's instruction)."""
    if seed is None or str(seed).strip() == "":
        seed_value = None
    else:
        try:
            seed_value = int(float(seed))
        except (TypeError, ValueError):
            raise InvalidInput(f"The seed must be a whole number from 0 to {SEED_MAX}.") from None
    return GenerationRequest(
        profile_id=profile_id,
        text=text,
        language=None if language in (None, "", PROFILE_LANGUAGE) else language,
        model_size=size or None,
        preset=preset or DEFAULT_PRESET,
        seed=seed_value,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        repetition_penalty=repetition_penalty,
        instruct=str(style or "").strip() or None,
    )


def session_key(request: Any) -> str:
    """Takes are tracked per browser session (Gradio's session hash)."""
    return getattr(request, "session_hash", None) or "local"


def buttons(generating: bool) -> tuple[Any, Any]:
    """(Generate, Cancel) visibility: exactly one of them shows."""
    return gr.update(visible=not generating), gr.update(visible=generating)
