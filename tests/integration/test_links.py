"""Preference links against a real Redis: signing, rotation, retirement, and tenants apart."""

from __future__ import annotations

import pytest

from guard.domain import tokens
from guard.errors import InvalidArgument
from guard.store.control import ControlStore
from guard.usecases.links import PreferenceLinks


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000_000

    def __call__(self) -> int:
        return self.now


def _token(url: str) -> str:
    return url.split("/p/")[1].split("?")[0]


async def test_a_link_names_its_tenant_and_user_and_stops_at_its_expiry(store):
    clock = Clock()
    links = PreferenceLinks(ControlStore(store.conn), "https://prefs.example.com/", now=clock)
    link = await links.create("acme", "u1", 3_600_000, "zh-CN")
    assert link.url.startswith("https://prefs.example.com/p/") and link.url.endswith("?lang=zh")
    assert link.unsubscribe_url == "https://prefs.example.com/u/" + _token(link.url)
    subject = await links.open(_token(link.url))
    assert (subject.tenant, subject.user_id, subject.expires_ms) == ("acme", "u1", clock.now + 3_600_000)
    clock.now += 3_600_000
    with pytest.raises(tokens.BadToken) as refused:
        await links.open(_token(link.url))
    assert refused.value.reason == "expired"


async def test_rotation_keeps_older_links_working_and_retiring_stops_them(store):
    clock = Clock()
    control = ControlStore(store.conn)
    signer, other_process = PreferenceLinks(control, "http://x", now=clock), PreferenceLinks(control, "http://x", now=clock)
    old = _token((await signer.create("acme", "u1")).url)
    assert (await other_process.open(old)).user_id == "u1"  # the other process caches the secret
    clock.now += 1
    current, accepted = await signer.rotate("acme", retire_previous=False)
    assert len(accepted) == 2 and current in accepted
    new = _token((await signer.create("acme", "u2")).url)
    assert tokens.secret_id_of(new) == current
    # Another process has not polled yet: a token naming a secret it has not seen makes it read them again.
    assert (await other_process.open(new)).user_id == "u2"
    assert (await other_process.open(old)).user_id == "u1"
    clock.now += 1
    await signer.rotate("acme", retire_previous=True)
    other_process.forget()  # what its control poll does when the revision moves
    for token in (old, new):
        with pytest.raises(tokens.BadToken) as refused:
            await other_process.open(token)
        assert refused.value.reason == "forged"


async def test_a_tenants_secret_never_verifies_another_tenants_link(store):
    """A link for beta's user, MAC'd properly with acme's current secret (what a leak of acme's secret would let
    someone make), is refused: each tenant's links verify only with that tenant's secrets. (Splicing beta's
    payload under acme's MAC would be refused whatever the secrets: it proves nothing about them.)"""
    control = ControlStore(store.conn)
    links = PreferenceLinks(control, "http://x", now=Clock())
    assert await links.open(_token((await links.create("acme", "u1")).url))  # acme's own link opens
    await links.create("beta", "u1")
    current, acme_secrets = await control.link_secrets("acme")
    forged = tokens.sign("preferences", ["beta", "u1"], Clock().now + 86_400_000, current, acme_secrets[current])
    sealed = tokens.seal("preferences", ["beta", "u1"], Clock().now + 86_400_000, current, acme_secrets[current])
    for token in (forged, sealed):
        with pytest.raises(tokens.BadToken):
            await links.open(token)


async def test_a_link_carries_no_user_id_in_clear_and_links_mailed_before_still_open(store):
    """A link is sealed: only the tenant (whose secrets to try) is readable, never the user, topic or campaign;
    a link signed the earlier way (payload readable, MAC'd) and mailed before the change still opens."""
    import base64

    control = ControlStore(store.conn)
    links = PreferenceLinks(control, "http://x", now=Clock())
    phone = "+8613800138000"  # a deployment that uses phone numbers as user ids
    token = _token((await links.create("acme", phone, topic="promotion", campaign_id="autumn")).url)
    assert token.startswith("e1.acme.")
    decoded = base64.urlsafe_b64decode(token.split(".")[3] + "==").decode("latin-1")
    assert phone not in token and phone not in decoded and "autumn" not in decoded
    opened = await links.open(token)
    assert (opened.user_id, opened.topic, opened.campaign_id) == (phone, "promotion", "autumn")
    current, secrets = await control.link_secrets("acme")
    mailed_before = tokens.sign("preferences", ["acme", "u9"], Clock().now + 86_400_000, current, secrets[current])
    assert (await links.open(mailed_before)).user_id == "u9"
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(tokens.BadToken) as refused:
        await links.open(tampered)
    assert refused.value.reason == "forged"


async def test_rotation_keeps_at_most_four_secrets(store):
    clock = Clock()
    links = PreferenceLinks(ControlStore(store.conn), "http://x", now=clock)
    await links.create("acme", "u1")
    for _ in range(6):
        clock.now += 1
        current, accepted = await links.rotate("acme", retire_previous=False)
    assert len(accepted) == 4 and max(accepted) == current


@pytest.mark.parametrize(("ttl", "locale", "field"), [(-1, "", "ttl"), (367 * 86_400_000, "", "ttl"), (0, "fr", "locale")])
async def test_bad_input_names_its_field(store, ttl, locale, field):
    links = PreferenceLinks(ControlStore(store.conn), "http://x", now=Clock())
    with pytest.raises(InvalidArgument) as refused:
        await links.create("acme", "u1", ttl, locale)
    assert refused.value.field == field
