"""Pure reply rules: keywords after normalising, priority words, attribution order."""

from __future__ import annotations

from guard import policy
from guard.domain import replies

P = policy.load(None).replies
RULES = replies.KeywordRules.of(P.opt_out_keywords, P.opt_in_keywords)


def test_opt_out_keywords_after_normalising_case_width_spaces_and_punctuation():
    for text in ["STOP", "stop", " Stop! ", "ＳＴＯＰ", "S T O P", "退订", "回T退订", "回Ｔ退订。", "TD", "t", "拒收",
                 "unsubscribe", "opt-out", "Opt Out", "退订谢谢", "拒收请回复R"]:
        assert RULES.action(text) == "opt_out", text


def test_sentences_that_mention_a_keyword_are_not_opt_outs():
    for text in ["Don't stop the deals!", "stop sending me ads please", "我想退订一部分", "", "😀", "别再发了"]:
        assert RULES.action(text) is None, text


def test_opt_in_keywords_reopen():
    for text in ["START", "unstop", "订阅"]:
        assert RULES.action(text) == "opt_in", text


def test_priority_p1_for_complaint_channels_and_legal_threats_whole_words_only():
    assert replies.priority(["再发我就投诉到12315"], 0.6, P.legal_words) == "P1"
    assert replies.priority(["I will sue you"], 0.6, P.legal_words) == "P1"
    assert replies.priority(["there is an issue with my order"], 0.6, P.legal_words) == "P3"
    assert replies.priority(["terrible"], 0.95, P.legal_words) == "P2"
    assert replies.priority(["meh"], 0.6, P.legal_words, high_value=True) == "P1"


def test_attribution_order():
    assert replies.attribute("c1", "c2", ("c3", 0), 10, 100) == "c1"
    assert replies.attribute("", "c2", ("c3", 0), 10, 100) == "c2"
    assert replies.attribute("", "", ("c3", 0), 10, 100) == "c3"
    assert replies.attribute("", "", ("c3", 0), 1000, 100) == ""
