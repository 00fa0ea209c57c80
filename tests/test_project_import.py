"""Project importers (issue #15): every format with good and bad files, encodings, caps."""

from __future__ import annotations

import time

import pytest

from voicebox.errors import InvalidInput
from voicebox.projects.importers import (
    FORMATS,
    MAX_BLOCK_CHARS,
    MAX_BLOCKS,
    BlockDraft,
    ImportResult,
    guess_format,
    match_voices,
    parse,
)


def bad(data: bytes | str, fmt: str) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse(data, fmt)
    return caught.value.message


# --- text --------------------------------------------------------------------------------------


def test_text_blank_line_starts_a_block_and_whitespace_is_normalised() -> None:
    data = b"\n  First   line\n  wraps here.\n\n\n\tSecond\tblock.  \n\nThird.\n"
    result = parse(data, "text")
    assert result == ImportResult(
        blocks=(
            BlockDraft("First line wraps here.", line=2),
            BlockDraft("Second block.", line=6),
            BlockDraft("Third.", line=8),
        )
    )


def test_text_windows_line_ends_and_whitespace_only_lines_separate_blocks() -> None:
    result = parse(b"One\r\ntwo\r\n   \r\nThree\r\n", "text")
    assert [(b.text, b.line) for b in result.blocks] == [("One two", 1), ("Three", 4)]


@pytest.mark.parametrize("data", [b"", b"   \n\n\t\n", "", "\ufeff\n"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_an_empty_file_is_refused(data: bytes | str, fmt: str) -> None:
    assert bad(data, fmt) == "The file has no text to speak."


def test_files_with_markup_but_no_text_are_refused() -> None:
    assert bad("text,voice\n,\n\n", "csv") == "The file has no text to speak."
    assert bad("WEBVTT\n\nNOTE nothing here\n", "vtt") == "The file has no text to speak."
    assert bad("1\n00:00:01,000 --> 00:00:02,000\n<i></i>\n", "srt") == "The file has no text to speak."
    assert bad("# Heading only\n\n---\n", "markdown") == "The file has no text to speak."


def test_utf8_bom_and_cp1252_fallback() -> None:
    assert parse("\ufeffCafé déjà vu".encode(), "text").blocks[0].text == "Café déjà vu"
    cp1252 = "Ça coûte 5 € – “quoted”".encode("cp1252")
    assert parse(cp1252, "text").blocks[0].text == "Ça coûte 5 € – “quoted”"
    # bytes cp1252 leaves undefined decode without an error
    assert parse(b"odd \x81 byte", "text").blocks[0].text == "odd \ufffd byte"
    assert parse("\ufeffName: hi".encode("utf-16"), "dialogue").blocks[0].voice == "Name"
    assert parse("\ufeffvoice,text\nA,hi\n".encode(), "csv").blocks == (BlockDraft("hi", voice="A", line=2),)


def test_binary_data_is_refused() -> None:
    assert "not a text file" in bad(b"\x89PNG\r\n\x1a\n\x00\x00\x00", "text")


def test_unknown_format_and_aliases() -> None:
    assert bad("hi", "docx") == (
        "Unknown import format 'docx': choose one of text, markdown, srt, vtt, csv, dialogue."
    )
    assert parse("hi", " TXT ").blocks[0].text == "hi"
    assert parse("# T\n\nhi", "md").title == "T"


def test_guess_format() -> None:
    assert guess_format("book.TXT") == "text"
    assert guess_format("/a/b/notes.md") == "markdown"
    assert guess_format("film.en.srt") == "srt"
    assert guess_format("film.vtt") == "vtt"
    assert guess_format("lines.csv") == "csv"
    assert guess_format("script.docx") is None
    assert guess_format("README") is None
    assert guess_format("") is None


# --- Markdown ----------------------------------------------------------------------------------

MARKDOWN = """\
---
author: someone
---
# The *Long* Road

A **bold** start with [a link](https://example.com) and `code`,
wrapped over two lines.

## Chapter One

- first item
- second _item_
  continues here
1. numbered ![pic](a.png)

> A quoted line.

```python
print("not spoken")
```

Chapter Two
-----------
### Ignored heading
#### Chapter Two, really ####

Text with snake_case and an escaped \\*star\\* &amp; an <b>HTML</b> tag.<!-- a comment -->

***
"""


def test_markdown_headings_are_chapters_and_markup_is_stripped() -> None:
    result = parse(MARKDOWN, "markdown")
    assert result.title == "The Long Road"
    assert result.blocks == (
        BlockDraft(
            "A bold start with a link and code, wrapped over two lines.", chapter="The Long Road", line=6
        ),
        BlockDraft("first item", chapter="Chapter One", line=11),
        BlockDraft("second item continues here", line=12),
        BlockDraft("numbered", line=14),
        BlockDraft("A quoted line.", line=16),
        BlockDraft(
            "Text with snake_case and an escaped *star* & an HTML tag.",
            chapter="Chapter Two, really",
            line=27,
        ),
    )


def test_markdown_without_a_level_one_heading_has_no_title() -> None:
    result = parse("## Part\n\nSome text.\n", "markdown")
    assert result.title == ""
    assert result.blocks == (BlockDraft("Some text.", chapter="Part", line=3),)


# --- SRT ---------------------------------------------------------------------------------------

SRT = """\
1
00:00:01,000 --> 00:00:03,500
<i>Hello</i> there,
general Kenobi.

2
00:01:02.250 --> 00:01:04,000 X1:10 X2:20
{\\an8}Second &amp; last

3
01:00:00,000 --> 01:00:01,000
<i> </i>
"""


def test_srt_one_block_per_cue_with_times() -> None:
    result = parse(SRT, "srt")
    assert result.blocks == (
        BlockDraft("Hello there, general Kenobi.", start=1.0, end=3.5, line=1),
        BlockDraft("Second & last", start=62.25, end=64.0, line=6),
    )


def test_srt_bad_time_names_the_line() -> None:
    data = SRT.replace("00:01:02.250", "00:01:0,500")
    assert bad(data, "srt") == (
        "Line 7 could not be read: the cue time '00:01:0,500' is not hh:mm:ss,mmm (write e.g. 00:01:02,500)."
    )


def test_srt_missing_time_line_and_reversed_times() -> None:
    message = bad("1\n00:00:01,000 --> 00:00:02,000\nHi\n\nstray text\nmore\n", "srt")
    assert message.startswith("Line 5 could not be read: expected a cue time line")
    message = bad("1\n00:00:03,000 --> 00:00:02,000\nHi\n", "srt")
    assert message.startswith("Line 2 could not be read: the cue ends (00:00:02,000) before it starts")


# --- WebVTT ------------------------------------------------------------------------------------

VTT = """\
WEBVTT - a title
Kind: captions

NOTE
a comment, not spoken

STYLE
::cue { color: red }

intro
00:01.000 --> 00:04.000 align:start position:10%
<v.loud Anna>Hi <c.yellow>there</c></v>
<00:00:02.000>Bob!

01:00:00.500 --> 01:00:02.000
Plain cue
"""


def test_vtt_cues_voices_and_skipped_blocks() -> None:
    result = parse(VTT, "vtt")
    assert result.blocks == (
        BlockDraft("Hi there Bob!", voice="Anna", start=1.0, end=4.0, line=10),
        BlockDraft("Plain cue", start=3600.5, end=3602.0, line=15),
    )


def test_vtt_bad_files_name_the_line() -> None:
    assert bad("1\n00:01.000 --> 00:02.000\nHi\n", "vtt").startswith(
        "Line 1 could not be read: a WebVTT file"
    )
    assert bad(VTT.replace("01:00:00.500", "1:00:00,500"), "vtt") == (
        "Line 15 could not be read: the cue time '1:00:00,500' is not hh:mm:ss.mmm (write e.g. 00:01:02.500)."
    )
    message = bad("WEBVTT\n\nid\nno time here\n", "vtt")
    assert message.startswith("Line 4 could not be read: expected a cue time line")


# --- CSV ---------------------------------------------------------------------------------------

CSV = """\
Voice,TEXT,Pause,language,Chapter,notes
Anna,"Hello, Bob.
How are you?",0.5,English,Act 1,ignored
,,,,,

Bob,Fine.,,,,
Anna,"She said ""hi"".",2s,de,,
"""


def test_csv_columns_any_case_quotes_and_line_numbers() -> None:
    result = parse(CSV, "csv")
    assert result.blocks == (
        BlockDraft(
            "Hello, Bob. How are you?", voice="Anna", language="English", pause=0.5, chapter="Act 1", line=2
        ),
        BlockDraft("Fine.", voice="Bob", line=6),
        BlockDraft('She said "hi".', voice="Anna", language="de", pause=2.0, line=7),
    )


def test_csv_semicolon_separated() -> None:
    assert parse("text;voice\nHallo, Welt;Anna\n", "csv").blocks == (
        BlockDraft("Hallo, Welt", voice="Anna", line=2),
    )


def test_csv_bad_files_name_the_line() -> None:
    assert bad("Anna,hello\nBob,hi\n", "csv").startswith(
        "Line 1 could not be read: the first row must be a header with a 'text' column"
    )
    assert bad(CSV.replace("2s", "soon"), "csv") == (
        "Line 7 could not be read: the pause 'soon' is not a number of seconds from 0 to 30 "
        "(write e.g. 0.5, or leave it empty for the default)."
    )
    assert bad("text,pause\nhi,-1\n", "csv").startswith("Line 2 could not be read: the pause '-1'")
    assert bad("text,pause\nhi,nan\n", "csv").startswith("Line 2 could not be read: the pause 'nan'")
    assert bad("voice,text\nA,one\nB,,\n", "csv").startswith("Line 3 could not be read: the row has no text")
    assert bad("voice,text\nA,one\nB,two,three\n", "csv").startswith(
        "Line 3 could not be read: the row has 3 cells but the header (line 1) has 2"
    )
    assert bad('text\nok\n"broken" quote\n', "csv").startswith("Line 3 could not be read:")
    assert bad("text,Text\nhi,hi\n", "csv").startswith(
        "Line 1 could not be read: the header names the column 'text' twice"
    )


# --- dialogue ----------------------------------------------------------------------------------

DIALOGUE = """\
Anna: Hello, Bob.
Bob:   Hi Anna!  It is 10:30 already.

anna: We should go.
    See https://example.com: later.
Narrator:
They left.
"""


def test_dialogue_two_voices_and_unknown_names() -> None:
    result = parse(DIALOGUE, "dialogue")
    assert result.blocks == (
        BlockDraft("Hello, Bob.", voice="Anna", line=1),
        BlockDraft("Hi Anna! It is 10:30 already.", voice="Bob", line=2),
        BlockDraft("We should go. See https://example.com: later.", voice="anna", line=4),
        BlockDraft("They left.", voice="Narrator", line=6),
    )
    matched = match_voices(result, ["ANNA ", "Carol"])
    assert matched.unknown_voices == ("Bob", "Narrator")
    assert matched.blocks == result.blocks
    assert match_voices(result, ["anna", "bob", "narrator"]).unknown_voices == ()
    assert match_voices(parse("plain text", "text"), []).unknown_voices == ()


def test_dialogue_titles_stage_directions_and_colons_in_text() -> None:
    script = "[Scene 1: a kitchen]\nMr. Smith: Tea?\n(pause)\nMrs. O'Brien-Lee: Yes: please.\nNote the time, 10:30.\n"
    assert parse(script, "dialogue").blocks == (
        BlockDraft("Tea?", voice="Mr. Smith", line=2),
        BlockDraft("Yes: please. Note the time, 10:30.", voice="Mrs. O'Brien-Lee", line=4),
    )


def test_dialogue_bad_files_name_the_line() -> None:
    assert bad("\nNo speaker here.\nAnna: hi\n", "dialogue") == (
        "Line 2 could not be read: it has no speaker; start the line with a name and a colon, e.g. 'Anna: Hello.'"
    )
    assert bad("Anna: hi\nBob:\n\nCarol: hey\n", "dialogue") == (
        "Line 2 could not be read: 'Bob' has no line to speak; write it after the colon."
    )


# --- caps --------------------------------------------------------------------------------------


def test_a_500_block_text_imports_fast() -> None:
    data = "\n\n".join(f"Paragraph number {i}. It has two sentences." for i in range(500)).encode()
    began = time.perf_counter()
    result = parse(data, "text")
    assert time.perf_counter() - began < 1.0
    assert len(result.blocks) == 500
    assert result.blocks[499] == BlockDraft("Paragraph number 499. It has two sentences.", line=999)


def test_a_block_over_the_cap_is_split_at_sentence_ends() -> None:
    sentence = "This sentence has exactly fifty characters in it. "
    assert len(sentence) == 50
    long = (sentence * 250).strip()  # 12,499 characters
    csv_data = f'text,voice,pause,chapter\n"{long}",Anna,1.5,Big\nshort,Bob,,\n'
    blocks = parse(csv_data, "csv").blocks
    assert [len(b.text) for b in blocks] == [4999, 4999, 2499, 5]
    assert all(b.text.endswith("in it.") for b in blocks[:3])
    assert " ".join(b.text for b in blocks[:3]) == long
    assert [(b.voice, b.chapter, b.pause, b.line) for b in blocks] == [
        ("Anna", "Big", None, 2),
        ("Anna", "", None, 2),
        ("Anna", "", 1.5, 2),
        ("Bob", "", None, 3),
    ]
    cue = parse(f"1\n00:00:01,000 --> 00:00:09,000\n{long}\n", "srt").blocks
    assert [(b.start, b.end) for b in cue] == [(1.0, None), (None, None), (None, 9.0)]
    assert all(len(b.text) <= MAX_BLOCK_CHARS for b in parse(long, "text").blocks)


def test_more_than_the_block_cap_is_refused() -> None:
    data = "\n".join(f"A: line {i}" for i in range(MAX_BLOCKS + 1))
    assert bad(data, "dialogue") == (
        "The file has more than 5,000 blocks (the limit was passed at line 5001): split it into several "
        "files and import them as separate projects."
    )
    assert len(parse("\n".join(f"A: line {i}" for i in range(MAX_BLOCKS)), "dialogue").blocks) == MAX_BLOCKS


def test_a_huge_paragraph_is_split_in_linear_time() -> None:
    words = "word " * 400_000  # 2 MB, no sentence ends: cut at spaces
    began = time.perf_counter()
    blocks = parse(words, "text").blocks
    assert time.perf_counter() - began < 2.0
    assert all(len(b.text) <= MAX_BLOCK_CHARS for b in blocks)
    assert " ".join(b.text for b in blocks) == words.strip()
    began = time.perf_counter()
    assert "more than 5,000 blocks" in bad("x" * (MAX_BLOCK_CHARS * MAX_BLOCKS + 1), "text")
    assert time.perf_counter() - began < 2.0
