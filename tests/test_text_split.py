"""Sentence splitting and chunking for TTS input (voicebox.engines.text_split)."""

from __future__ import annotations

import random

import pytest

from voicebox.engines.text_split import MIN_MAX_CHARS, chunk_text, split_sentences


def _squash(text: str) -> str:
    """``text`` with all whitespace removed: what splitting and chunking must preserve."""
    return "".join(text.split())


# --- split_sentences: table-driven rules -------------------------------------------------------

SPLIT_CASES = [
    # basics
    ("basic", "Hello there. How are you? I am fine!", ["Hello there.", "How are you?", "I am fine!"]),
    ("single", "Just one sentence.", ["Just one sentence."]),
    ("no final punctuation", "First one. second one without end", ["First one.", "second one without end"]),
    ("repeated marks", "What?! Really!!! Yes.", ["What?!", "Really!!!", "Yes."]),
    # abbreviations
    ("titles", "Mr. Smith met Mrs. Jones and Ms. Lee. Dr. Who and Prof. X came.",
     ["Mr. Smith met Mrs. Jones and Ms. Lee.", "Dr. Who and Prof. X came."]),
    ("saint and vs", "St. Louis vs. Chicago tonight. Go team.", ["St. Louis vs. Chicago tonight.", "Go team."]),
    ("e.g. and i.e.", "Fruit, e.g. Apples, i.e. Red ones. Done.", ["Fruit, e.g. Apples, i.e. Red ones.", "Done."]),
    ("case-insensitive", "MR. SMITH and DR. JONES left. Bye.", ["MR. SMITH and DR. JONES left.", "Bye."]),
    ("etc. mid-sentence", "Apples, pears, etc. and more. Next.", ["Apples, pears, etc. and more.", "Next."]),
    ("etc. ends a sentence", "Apples, pears, etc. Then we left.", ["Apples, pears, etc.", "Then we left."]),
    ("a.m. / p.m.", "Open 9 a.m. to 5 p.m. daily. Closed Sun.", ["Open 9 a.m. to 5 p.m. daily.", "Closed Sun."]),
    ("p.m. ends a sentence", "We met at 5 p.m. Then we ate.", ["We met at 5 p.m.", "Then we ate."]),
    ("U.S.", "The U.S. Army is big. The U.K. too.", ["The U.S. Army is big.", "The U.K. too."]),
    ("No. before a number", "Call No. 5 now. I said no. Then left.", ["Call No. 5 now.", "I said no.", "Then left."]),
    ("months", "Due Jan. 5 and Feb. 10. Ok.", ["Due Jan. 5 and Feb. 10.", "Ok."]),
    ("Inc. before lowercase", "Apple Inc. announced it. Fine.", ["Apple Inc. announced it.", "Fine."]),
    ("et al.", "Smith et al. showed this. Next.", ["Smith et al. showed this.", "Next."]),
    ("opening bracket before abbreviation", "See (Fig. 3) here. Ok.", ["See (Fig. 3) here.", "Ok."]),
    # initials
    ("initials", "J. R. R. Tolkien wrote it. Then he slept.", ["J. R. R. Tolkien wrote it.", "Then he slept."]),
    ("single initial", "George W. Bush spoke. Fine.", ["George W. Bush spoke.", "Fine."]),
    ("pronoun I is not an initial", "So did I. Then we left.", ["So did I.", "Then we left."]),
    # numbers
    ("decimal", "Pi is 3.14 roughly. Yes.", ["Pi is 3.14 roughly.", "Yes."]),
    ("decimal at end", "Pi is 3.14. Yes.", ["Pi is 3.14.", "Yes."]),
    ("version", "Install v1.2.3 today. It works.", ["Install v1.2.3 today.", "It works."]),
    ("money", "It costs $4.50 now. Cheap.", ["It costs $4.50 now.", "Cheap."]),
    ("thousands and decimal", "We sold 1,000.5 units. Wow.", ["We sold 1,000.5 units.", "Wow."]),
    ("chapter number ends sentence", "Read chapter 2. Then rest.", ["Read chapter 2.", "Then rest."]),
    ("list numbering", "1. Preheat the oven.\n2. Bake it.", ["1. Preheat the oven.", "2. Bake it."]),
    # URLs, e-mail, domains
    ("domain", "Go to example.com for more. Thanks.", ["Go to example.com for more.", "Thanks."]),
    ("www", "Visit www.x.org today. Bye.", ["Visit www.x.org today.", "Bye."]),
    ("url", "See https://docs.example.org/a/b.html?x=1 now. Ok.",
     ["See https://docs.example.org/a/b.html?x=1 now.", "Ok."]),
    ("url at sentence end", "See https://example.org/page. Next one.", ["See https://example.org/page.", "Next one."]),
    ("e-mail", "Mail john.doe@mail.example.com today. Or call.",
     ["Mail john.doe@mail.example.com today.", "Or call."]),
    ("e-mail at sentence end", "Write to a.b@c.io. We reply.", ["Write to a.b@c.io.", "We reply."]),
    # quotes and brackets after punctuation
    ("double quotes", 'He said "Stop." Then left.', ['He said "Stop."', "Then left."]),
    ("curly quotes", "She said “Go!” We went.", ["She said “Go!”", "We went."]),
    ("single quotes", "He said 'no.' Fine.", ["He said 'no.'", "Fine."]),
    ("brackets", "(This is aside.) Main text.", ["(This is aside.)", "Main text."]),
    ("dialogue tag", "“Really?” she asked. Yes.", ["“Really?” she asked.", "Yes."]),
    ("question then lowercase", '"Stop!" he said. Ok.', ['"Stop!" he said.', "Ok."]),
    # ellipsis
    ("ellipsis before lowercase", "Wait… what happened? Nothing.", ["Wait… what happened?", "Nothing."]),
    ("dots before lowercase", "Well... maybe not. Ok.", ["Well... maybe not.", "Ok."]),
    ("ellipsis ends sentence", "I see... Now I know.", ["I see...", "Now I know."]),
    ("unicode ellipsis ends sentence", "I see… Now I know.", ["I see…", "Now I know."]),
    ("ellipsis without space", "wait…what now", ["wait…what now"]),
    # CJK
    ("chinese", "你好。我是小明！你呢？很好。", ["你好。", "我是小明！", "你呢？", "很好。"]),
    ("japanese", "今日は晴れです。明日も晴れ！本当？", ["今日は晴れです。", "明日も晴れ！", "本当？"]),
    ("cjk closing quote", "「こんにちは。」と彼は言った。", ["「こんにちは。」", "と彼は言った。"]),
    ("cjk closing bracket", "他说（真的！）我信了。", ["他说（真的！）", "我信了。"]),
    ("half-width ideographic stop", "はい｡いいえ｡", ["はい｡", "いいえ｡"]),
    ("full-width stop", "好．的", ["好．", "的"]),
    ("full-width decimal", "圆周率是３．１４。对。", ["圆周率是３．１４。", "对。"]),
    ("ascii marks in chinese", "你好!我是谁?不知道.", ["你好!", "我是谁?", "不知道."]),
    ("cjk with spaces", "你好。 我很好。", ["你好。", "我很好。"]),
    ("cjk clause marks do not split", "我喜欢苹果，香蕉、和橘子；真的。", ["我喜欢苹果，香蕉、和橘子；真的。"]),
    ("korean", "안녕하세요. 저는 학생입니다.", ["안녕하세요.", "저는 학생입니다."]),
    # mixed
    ("mixed", "今日は晴れ。Hello world. 我也喜欢。OK.好的", ["今日は晴れ。", "Hello world.", "我也喜欢。", "OK.", "好的"]),
    ("latin inside cjk", "我用Python 3.12写代码。很好。", ["我用Python 3.12写代码。", "很好。"]),
    ("abbreviation before cjk", "他是Mr.王。好。", ["他是Mr.王。", "好。"]),
    # newlines and whitespace
    ("newlines", "Line one\nLine two\r\nLine three", ["Line one", "Line two", "Line three"]),
    ("blank lines", "Para one.\n\n\n  Para two.  ", ["Para one.", "Para two."]),
    ("hard-wrapped sentence", "A sentence that\nwraps.", ["A sentence that", "wraps."]),
    ("collapse spaces", "  Too    many\t spaces.   Here  ", ["Too many spaces.", "Here"]),
    ("ideographic space", "你好。\u3000我很好。", ["你好。", "我很好。"]),
    # empty
    ("empty", "", []),
    ("blank", " \n\t \n ", []),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in SPLIT_CASES], ids=[c[0] for c in SPLIT_CASES])
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_split_sentences_rejects_non_str() -> None:
    with pytest.raises(TypeError):
        split_sentences(None)  # type: ignore[arg-type]


# --- chunk_text --------------------------------------------------------------------------------


def test_short_text_is_one_chunk() -> None:
    text = "Hello there. How are you? I am fine!"
    assert chunk_text(text) == [text]


def test_short_text_whitespace_normalised() -> None:
    assert chunk_text("  Hello \n\n there.  ") == ["Hello there."]


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t"])
def test_blank_text_gives_no_chunks(text: str) -> None:
    assert chunk_text(text) == []


def test_greedy_packing_at_sentence_boundaries() -> None:
    sentences = [f"Sentence number {i} is here." for i in range(10)]  # 27-28 chars each
    chunks = chunk_text(" ".join(sentences), max_chars=60)
    assert chunks == [f"{sentences[i]} {sentences[i + 1]}" for i in range(0, 10, 2)]


def test_packing_never_splits_fitting_sentences() -> None:
    text = "Alpha beta gamma. Delta epsilon zeta eta. Theta. Iota kappa lambda mu nu."
    chunks = chunk_text(text, max_chars=40)
    assert chunks == ["Alpha beta gamma.", "Delta epsilon zeta eta. Theta.", "Iota kappa lambda mu nu."]
    for chunk in chunks:
        assert split_sentences(chunk)  # each chunk is whole sentences
        assert all(s in split_sentences(text) for s in split_sentences(chunk))


def test_exact_fit() -> None:
    text = "a" * 19 + ". " + "b" * 19 + "."  # two 20-char sentences
    assert chunk_text(text, max_chars=41) == [text]
    assert chunk_text(text, max_chars=40) == ["a" * 19 + ".", "b" * 19 + "."]


def test_long_sentence_splits_at_clauses() -> None:
    text = "The first clause is here, the second clause follows; and a third one: then the end."
    chunks = chunk_text(text, max_chars=30)
    # clauses are packed greedily too: the last two fit together in exactly 30 characters
    assert chunks == ["The first clause is here,", "the second clause follows;", "and a third one: then the end."]


def test_clause_split_keeps_numbers_and_closing_quotes() -> None:
    text = "He paid 1,000 dollars at 10:30 today, “yes,” she said, and then everybody left home."
    assert chunk_text(text, max_chars=40) == [
        "He paid 1,000 dollars at 10:30 today,",
        "“yes,” she said,",
        "and then everybody left home.",
    ]


def test_dash_clauses() -> None:
    text = "It was late—very late—and everyone had gone – even the cat had left the house."
    assert chunk_text(text, max_chars=30) == [
        "It was late—very late—",
        "and everyone had gone – even",
        "the cat had left the house.",
    ]


def test_long_clause_splits_at_words() -> None:
    words = [f"word{i}" for i in range(40)]
    text = " ".join(words) + "."
    chunks = chunk_text(text, max_chars=50)
    assert len(chunks) > 1
    assert all(len(c) <= 50 for c in chunks)
    assert " ".join(chunks) == text  # cuts only at spaces: no word is broken
    assert all(len(c) + 1 + len(n.split()[0]) > 50 for c, n in zip(chunks, chunks[1:]))  # greedy


def test_cjk_long_sentence_splits_at_cjk_clauses() -> None:
    text = "我今天去了商店买了很多东西，然后回家做了晚饭、洗了碗；最后看了一部很长很长的电影。"
    chunks = chunk_text(text, max_chars=20)
    assert all(len(c) <= 20 for c in chunks)
    assert "".join(chunks) == text  # CJK pieces rejoin without spaces
    assert chunks[0] == "我今天去了商店买了很多东西，"


def test_cjk_without_punctuation_is_hard_cut() -> None:
    text = "永" * 95
    assert chunk_text(text, max_chars=20) == ["永" * 20] * 4 + ["永" * 15]


def test_long_token_is_hard_cut() -> None:
    url = "https://example.com/" + "x" * 80
    chunks = chunk_text(f"See {url} now.", max_chars=30)
    assert all(len(c) <= 30 for c in chunks)
    assert _squash("".join(chunks)) == _squash(f"See {url} now.")


def test_cjk_sentences_join_without_space_latin_with_space() -> None:
    assert chunk_text("你好。我是小明！", max_chars=100) == ["你好。我是小明！"]
    assert chunk_text("你好。 我是小明！", max_chars=100) == ["你好。 我是小明！"]
    assert chunk_text("안녕하세요. 저는 학생입니다.", max_chars=100) == ["안녕하세요. 저는 학생입니다."]
    assert chunk_text("Line one\nLine two", max_chars=100) == ["Line one Line two"]


def test_default_max_chars_is_300() -> None:
    text = " ".join(f"This is sentence {i:03d} of the test." for i in range(100))
    chunks = chunk_text(text)
    assert len(chunks) > 1
    assert all(len(c) <= 300 for c in chunks)
    assert max(len(c) for c in chunks) > 250


@pytest.mark.parametrize("max_chars", [19, 0, -5])
def test_max_chars_too_small(max_chars: int) -> None:
    with pytest.raises(ValueError, match="at least 20"):
        chunk_text("Hello.", max_chars=max_chars)


def test_min_max_chars_accepted() -> None:
    assert MIN_MAX_CHARS == 20
    assert chunk_text("Hello world.", max_chars=20) == ["Hello world."]


@pytest.mark.parametrize("max_chars", [20.5, "300", None, True])
def test_max_chars_must_be_int(max_chars: object) -> None:
    with pytest.raises(TypeError):
        chunk_text("Hello.", max_chars=max_chars)  # type: ignore[arg-type]


# --- property: nothing lost, bounds hold -------------------------------------------------------

_FRAGMENTS = [
    "Hello", "world", "the", "a", "quick", "brown", "fox", "Mr.", "Mrs.", "Dr.", "etc.", "e.g.",
    "i.e.", "U.S.", "a.m.", "p.m.", "No.", "Jan.", "J.", "R.", "I.", "3.14", "v1.2.3", "$4.50",
    "1,000.5", "10:30", "example.com", "www.x.org", "https://a.b/c?d=e", "bob@example.com",
    "...", "…", ".", "!", "?", "?!", ",", ";", ":", "—", "–", '"', "'", "“", "”", "‘", "’", "(",
    ")", "[", "]", "«", "»", "你好", "世界", "。", "！", "？", "，", "、", "；", "：", "「", "」",
    "（", "）", "こんにちは", "カタカナ", "안녕하세요", "．", "３", "１４", "｡", "1.", "2.", "wait",
    "Then", "x" * 45, "永" * 33, "supercalifragilisticexpialidocious", "😀", "é", "ß", "0",
]
_SPACES = [" ", " ", " ", "  ", "\n", "\n\n", "\t", "\r\n", "\u3000", "\xa0", ""]
_ALPHABET = "aZ .!?…,;:—'\"”」。！？，、．0123456789 \n你好カ한😀()"


def _random_text(rng: random.Random) -> str:
    if rng.random() < 0.2:  # raw character soup
        return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 400)))
    parts = []
    for _ in range(rng.randint(0, 120)):
        parts.append(rng.choice(_FRAGMENTS))
        parts.append(rng.choice(_SPACES))
    return "".join(parts)


_RANDOM_TEXTS = [_random_text(random.Random(seed)) for seed in range(300)]


@pytest.mark.parametrize("max_chars", [20, 37, 80, 300])
def test_property_chunks_lose_nothing_and_respect_bound(max_chars: int) -> None:
    for text in _RANDOM_TEXTS:
        chunks = chunk_text(text, max_chars=max_chars)
        assert _squash("".join(chunks)) == _squash(text), text
        for chunk in chunks:
            assert chunk and chunk == chunk.strip(), (text, chunk)
            assert len(chunk) <= max_chars, (text, chunk)
            assert "\n" not in chunk and "  " not in chunk, (text, chunk)
        if not _squash(text):
            assert chunks == []


def test_property_sentences_lose_nothing() -> None:
    for text in _RANDOM_TEXTS:
        sentences = split_sentences(text)
        assert _squash("".join(sentences)) == _squash(text), text
        for sentence in sentences:
            assert sentence and sentence == sentence.strip(), (text, sentence)
            assert " ".join(sentence.split()) == sentence, (text, sentence)


def test_property_short_text_is_single_chunk() -> None:
    for text in _RANDOM_TEXTS:
        normalised = " ".join(text.split())
        if normalised and len(normalised) <= 300:
            assert chunk_text(text, max_chars=300) == [normalised], text


def test_deterministic() -> None:
    text = _RANDOM_TEXTS[7] * 3
    assert chunk_text(text, 50) == chunk_text(text, 50)
    assert split_sentences(text) == split_sentences(text)
