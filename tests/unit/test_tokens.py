"""Signed tokens and the pages' language choice: pure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guard.domain import tokens
from guard.web import i18n

SECRET = b"k" * 32


def test_a_sealed_token_hides_its_fields_and_opens_only_for_its_purpose_secret_and_time():
    token = tokens.seal("preferences", ["acme", "u1", "promotion"], 2_000, "s1", SECRET)
    assert token.startswith("e1.acme.s1.") and "u1" not in token
    assert tokens.unverified_fields(token) == ["acme"]
    assert tokens.verify("preferences", token, {"s1": SECRET}, 1_999) == (["acme", "u1", "promotion"], 2_000)
    assert tokens.seal("preferences", ["acme", "u1"], 2_000, "s1", SECRET) != tokens.seal(
        "preferences", ["acme", "u1"], 2_000, "s1", SECRET)  # a fresh nonce each time
    for now, purpose, secrets, changed, reason in [
            (2_000, "preferences", {"s1": SECRET}, token, "expired"),
            (1_000, "desk-session", {"s1": SECRET}, token, "forged"),
            (1_000, "preferences", {"s1": b"x" * 32}, token, "forged"),
            (1_000, "preferences", {"s1": SECRET}, token.replace("e1.acme.", "e1.beta."), "forged"),  # bound in
            (1_000, "preferences", {"s1": SECRET}, token[:-2], "forged"),
            (1_000, "preferences", {"s1": SECRET}, "e1.acme.s1.AAAA", "malformed")]:
        with pytest.raises(tokens.BadToken) as refused:
            tokens.verify(purpose, changed, secrets, now)
        assert refused.value.reason == reason, (changed, reason)


def test_a_token_verifies_until_it_expires_and_only_for_its_purpose():
    token = tokens.sign("preferences", ["acme", "u1"], 2_000, "s1", SECRET)
    assert tokens.verify("preferences", token, {"s1": SECRET}, 1_999) == (["acme", "u1"], 2_000)
    for now, purpose, secrets, reason in [(2_000, "preferences", {"s1": SECRET}, "expired"),
                                          (1_000, "desk-session", {"s1": SECRET}, "forged"),
                                          (1_000, "preferences", {"s1": b"x" * 32}, "forged"),
                                          (1_000, "preferences", {"s2": SECRET}, "forged")]:
        with pytest.raises(tokens.BadToken) as refused:
            tokens.verify(purpose, token, secrets, now)
        assert refused.value.reason == reason


def test_an_expired_forgery_is_called_forged_not_expired():
    token = tokens.sign("preferences", ["acme", "u1"], 2_000, "s1", SECRET)
    secret_id, payload, mac = token.split(".")
    with pytest.raises(tokens.BadToken) as refused:
        tokens.verify("preferences", f"{secret_id}.{payload}.{mac[::-1]}", {"s1": SECRET}, 5_000)
    assert refused.value.reason == "forged"


@given(st.text(min_size=0, max_size=300))
def test_any_string_is_refused_with_a_reason_never_an_exception_of_another_kind(garbage):
    with pytest.raises(tokens.BadToken) as refused:
        tokens.verify("preferences", garbage, {"s1": SECRET}, 0)
    assert refused.value.reason in ("malformed", "forged")


@given(st.integers(min_value=0, max_value=200), st.characters())
def test_changing_any_one_character_of_a_token_is_refused(position, replacement):
    token = tokens.sign("preferences", ["acme", "user-1"], 10**13, "0123abcd", SECRET)
    i = position % len(token)
    if token[i] == replacement:
        return
    altered = token[:i] + replacement + token[i + 1:]
    with pytest.raises(tokens.BadToken):
        tokens.verify("preferences", altered, {"0123abcd": SECRET}, 0)


def test_a_field_holding_the_separator_is_refused_when_signing():
    with pytest.raises(ValueError):
        tokens.sign("preferences", ["acme", "u\x1f1"], 1, "s1", SECRET)


@pytest.mark.parametrize(("requested", "header", "expected"), [
    ("zh", "en-US,en;q=0.9", "zh"),
    ("", "zh-CN,zh;q=0.9,en;q=0.8", "zh"),
    ("", "fr-FR, en;q=0.5, zh;q=0.4", "en"),
    ("", "fr-FR", "en"),
    ("", "en;q=0.2, zh-TW;q=0.8", "zh"),
    ("xx", "zh;q=0", "en"),
    ("", "", "en"),
])
def test_the_language_is_the_addresss_then_the_browsers_then_english(requested, header, expected):
    assert i18n.negotiate(requested, header) == expected


def test_every_text_exists_in_both_languages():
    assert all(len(pair) == 2 and all(p.strip() for p in pair) for pair in i18n.TEXT.values())
    assert i18n.words("zh")["prefs.title"] == "消息偏好设置"
