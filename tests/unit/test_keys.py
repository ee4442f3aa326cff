"""One source for the key layout: every name UserKeys gives a user is one export and erasure find."""

from __future__ import annotations

import inspect

from guard.domain.types import RuleCheck
from guard.store.keys import USER_PREFIXES, USER_SUFFIXES, UserKeys
from guard.store.subject import _is_users


def _every_name(keys: UserKeys) -> dict[str, str]:
    """Each kind of key UserKeys makes (a property, or a method called with sample arguments)."""
    samples = {"touch_id": "t1", "reply_id": "r1", "rule": RuleCheck("weekly", "push", 3, 1000), "figure": "negative",
               "campaign_id": "spring"}
    names = {}
    for attribute, member in inspect.getmembers(type(keys)):
        if attribute.startswith("_"):
            continue
        if isinstance(member, property):
            names[attribute] = getattr(keys, attribute)
        elif inspect.isfunction(member):
            parameters = list(inspect.signature(member).parameters)[1:]
            names[attribute] = getattr(keys, attribute)(*(samples[p] for p in parameters))
    return {k: v for k, v in names.items() if isinstance(v, str)}


def test_every_key_kind_of_a_user_is_found_by_export_and_erasure():
    keys = UserKeys("acme", "u1")
    names = _every_name(keys)
    assert len(names) >= 15  # every property and method, not a lucky few
    prefix = "guard:{acme:u1}:"
    missing = {kind: name for kind, name in names.items() if not _is_users(name, prefix)}
    assert missing == {}, f"add these to keys.USER_SUFFIXES or USER_PREFIXES: {missing}"
    assert len(set(USER_SUFFIXES)) == len(USER_SUFFIXES) and all(p.endswith(":") for p in USER_PREFIXES)
