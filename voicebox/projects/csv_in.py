"""CSV import: a header row, then one block per row.

The header must name a ``text`` column; ``voice``, ``language``, ``pause`` (seconds, e.g. ``0.5``
or ``0.5s``, from 0 to :data:`MAX_PAUSE_SECONDS`) and ``chapter`` are optional. Column names are
matched in any case and order; other columns are ignored. Quoted cells may hold commas, quotes
(doubled) and line breaks. A file whose header has no comma but a ``;`` or a tab is read with that
separator (spreadsheets in many locales write ``;``). Rows with every cell empty are skipped; a
row with other cells but no text, more cells than the header, or a bad pause is refused with its
line number.
"""

from __future__ import annotations

import csv
import io
import math

from ..errors import InvalidInput
from .importers import NO_TEXT, BlockDraft, ImportResult, _finish, line_error, squash

__all__ = ["MAX_PAUSE_SECONDS", "parse_csv"]

#: The longest pause a CSV row may ask for after its block.
MAX_PAUSE_SECONDS = 30.0  # as the project service allows (service.clean_pause)

_CSV_COLUMNS = ("text", "voice", "language", "pause", "chapter")


def _pause(value: str, line: int) -> float | None:
    value = value.strip()
    if not value:
        return None
    number = value[:-1].strip() if value.lower().endswith("s") else value
    try:
        seconds = float(number)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 <= seconds <= MAX_PAUSE_SECONDS):
        raise line_error(
            line,
            f"the pause {value!r} is not a number of seconds from 0 to {MAX_PAUSE_SECONDS:g} "
            "(write e.g. 0.5, or leave it empty for the default).",
        )
    return seconds


def parse_csv(text: str) -> ImportResult:
    """A header row naming a ``text`` column, then one block per row (empty rows are skipped)."""
    first = next((row for row in text.split("\n") if row.strip()), "")
    if not first:
        raise InvalidInput(NO_TEXT)
    delimiter = next((d for d in (",", ";", "\t") if d in first), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    header_line = 0
    columns: dict[str, int] = {}
    blocks: list[BlockDraft] = []
    row_start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise line_error(row_start, f"{exc} (check the quotes around this row's cells).") from None
        line, row_start = row_start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header, header_line = [cell.strip().lower() for cell in row], line
            for index, name in enumerate(header):
                if name in _CSV_COLUMNS:
                    if name in columns:
                        raise line_error(line, f"the header names the column {name!r} twice; keep one.")
                    columns[name] = index
            if "text" not in columns:
                raise line_error(
                    line,
                    "the first row must be a header with a 'text' column (and optionally 'voice', "
                    f"'language', 'pause', 'chapter'); it reads {', '.join(repr(c) for c in row)}.",
                )
            continue
        if len(row) > len(header) and any(cell.strip() for cell in row[len(header) :]):
            raise line_error(
                line,
                f"the row has {len(row)} cells but the header (line {header_line}) has {len(header)}; "
                "put quotes around cells that contain a comma.",
            )

        def cell(name: str, row: list[str] = row) -> str:
            index = columns.get(name)
            return row[index].strip() if index is not None and index < len(row) else ""

        body = squash(cell("text"))
        if not body:
            raise line_error(line, "the row has no text; fill in its 'text' cell or delete the row.")
        blocks.append(
            BlockDraft(
                text=body,
                voice=cell("voice"),
                language=cell("language"),
                pause=_pause(cell("pause"), line),
                chapter=squash(cell("chapter")),
                line=line,
            )
        )
    if header is None:
        raise InvalidInput(NO_TEXT)
    return _finish(blocks)
