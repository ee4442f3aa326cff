"""Consent evidence as the ledger keeps it: an address only as the policy allows, a browser only by family, and the
words a page showed under a version that changes when they do."""

from __future__ import annotations

from guard import policy
from guard.web import i18n
from guard.web.prefs import browser_family, kept_ip, wording_of

SECRET = b"k" * 32


def test_an_address_is_kept_truncated_hashed_or_not_at_all():
    assert kept_ip("203.0.113.77", "truncated", SECRET) == "203.0.113.0/24"
    assert kept_ip("2001:db8:abcd:12::7", "truncated", SECRET) == "2001:db8:abcd::/48"
    hashed = kept_ip("203.0.113.77", "hashed", SECRET)
    assert len(hashed) == 16 and "203" not in hashed and hashed == kept_ip("203.0.113.77", "hashed", SECRET)
    assert hashed != kept_ip("203.0.113.77", "hashed", b"x" * 32)  # keyed: not a lookup table of addresses
    assert kept_ip("203.0.113.77", "none", SECRET) == "" and kept_ip("not an address", "truncated", SECRET) == ""


def test_a_browser_is_kept_by_family_only():
    chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0 Safari/537.36"
    edge = "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 Edg/120.0"
    safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Safari/604.1"
    wechat = "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 Mobile/15E148 MicroMessenger/8.0.44"
    assert [browser_family(u) for u in (chrome, edge, safari, wechat, "python-httpx/0.28", "")] == [
        "Chrome", "Edge", "Safari", "WeChat", "other", ""]


def test_the_wording_version_names_the_words_and_changes_with_them():
    pol = policy.load(None)
    en, en_text = wording_of(i18n.words("en"), pol, "en")
    zh, _ = wording_of(i18n.words("zh"), pol, "zh")
    assert len(en) == 16 and en != zh and en == wording_of(i18n.words("en"), pol, "en")[0]
    assert "Closing it stops news and offers" in en_text and "Text messages (SMS)" in en_text
    changed = {**i18n.words("en"), "prefs.channel.service": "Closing it stops everything."}
    assert wording_of(changed, pol, "en")[0] != en
