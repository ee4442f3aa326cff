"""Pure rules for user replies: opt-out keywords, task priority, SLA and attribution."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass


def normalize_keyword(text: str) -> str:
    """Case, full-width forms, spaces and punctuation folded away: "  ＳＴＯＰ！" → "stop"."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] not in ("P", "Z", "S", "C"))


@dataclass(frozen=True)
class KeywordRules:
    opt_out: frozenset[str]
    opt_in: frozenset[str]

    @classmethod
    def of(cls, opt_out: Iterable[str], opt_in: Iterable[str]) -> KeywordRules:
        return cls(frozenset(normalize_keyword(k) for k in opt_out), frozenset(normalize_keyword(k) for k in opt_in))

    def action(self, text: str) -> str | None:
        """"opt_out", "opt_in" or None. The whole reply must be the keyword: "Don't stop!" is not."""
        key = normalize_keyword(text)
        if not key:
            return None
        if key in self.opt_out:
            return "opt_out"
        if key in self.opt_in:
            return "opt_in"
        return None


def priority(texts: Iterable[str], negative_score: float, legal_words: Iterable[str], high_value: bool = False) -> str:
    """P1 when a complaint channel or legal threat is named (or the user is high-value), else by score."""
    folded = [unicodedata.normalize("NFKC", t).casefold() for t in texts]
    # Latin words match whole words ("sue" is not in "issue"); CJK words match anywhere.
    patterns = [re.compile(rf"\b{re.escape(w.casefold())}\b") if w.isascii() else re.compile(re.escape(w))
                for w in legal_words]
    if high_value or any(p.search(t) for t in folded for p in patterns):
        return "P1"
    return "P2" if negative_score >= 0.9 else "P3"


def attribute(campaign_id: str, touch_campaign: str, last_touch: tuple[str, int] | None, received_ms: int,
              window_ms: int) -> str:
    """The reply's campaign: named, else the replied-to touch's, else the last touch within the window."""
    if campaign_id:
        return campaign_id
    if touch_campaign:
        return touch_campaign
    if last_touch is not None and received_ms - last_touch[1] <= window_ms:
        return last_touch[0]
    return ""


@dataclass(frozen=True)
class StoredReply:
    """A reply as stored, with what scoring it and opening its task needs."""

    reply_id: str
    text: str
    at_ms: int
    channel: str
    campaign_id: str
    high_value: bool
    strategy_id: str = ""

    @classmethod
    def from_hash(cls, reply_id: str, raw: dict[str, str]) -> StoredReply:
        return cls(reply_id, raw.get("text", ""), int(raw.get("at", 0)), raw.get("channel", ""),
                   raw.get("campaign", ""), raw.get("hv") == "1", raw.get("strategy", ""))
