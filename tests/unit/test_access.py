"""Who may call what: the role table covers every method, and its small parts behave."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from guard.access.keys import (
    METHOD_ROLES,
    FailureLimiter,
    Grant,
    Role,
    bearer,
    check_tenant,
    methods_of,
    new_key,
    peer_host,
    role_table,
)
from guard.errors import InvalidArgument, PermissionDenied
from guard.v1 import guard_pb2 as pb

REPO = Path(__file__).resolve().parents[2]


def test_every_method_of_every_service_has_its_roles():
    methods = {m.name for s in pb.DESCRIPTOR.services_by_name.values() for m in s.methods}
    assert methods == set(METHOD_ROLES)


@pytest.mark.parametrize(("roles", "allowed"), [
    ({Role.SENDER}, {"CheckTouch", "CheckTouches", "CancelTouch", "RecordReply", "RecordEngagement", "RecordEngagements",
                      "CreatePreferenceLink", "CreateConfirmationLink", "SetContactPoints"}),
    ({Role.PREFERENCES}, {"GetPreferences", "UpdatePreferences", "ListConsentEvents"}),
    ({Role.SUPPORT}, {"GetUserState", "WatchRecoveryTasks", "ListRecoveryTasks", "ClaimRecoveryTask",
                      "ResolveRecoveryTask", "SetEngagementTier", "GetCampaignHealth", "ListCampaignHealth",
                      "GetExperienceHealth"}),
    ({Role.OPERATOR}, {"CreateApiKey", "ListApiKeys", "RevokeApiKey", "ApplyPolicy", "GetPolicy", "RotateLinkSecret",
                       "SetHookSecret", "ListHookReceivers", "AddWebhook", "ListWebhooks", "RemoveWebhook",
                       "RotateWebhookSecret", "TestWebhook", "ReplayWebhook"}),
    ({Role.ADMIN}, set(METHOD_ROLES)),
])
def test_each_role_reaches_exactly_its_methods(roles, allowed):
    grant = Grant("k", "acme", frozenset(roles), "n")
    assert {m for m in METHOD_ROLES if grant.allows(m)} == allowed
    assert not grant.allows("SomethingNew")  # a method missing from the table is refused


def test_only_an_operator_acts_for_another_tenant():
    assert Grant("k", "acme", frozenset({Role.ADMIN}), "n").may_act_for("acme")
    assert not Grant("k", "acme", frozenset({Role.ADMIN}), "n").may_act_for("globex")
    assert Grant("k", "acme", frozenset({Role.OPERATOR}), "n").may_act_for("globex")


@pytest.mark.parametrize("name", ["", "Acme", "a:b", "a{b}", "-a", "a" * 49, "a b", "ä"])
def test_tenant_names_cannot_reach_into_another_slot(name):
    with pytest.raises(InvalidArgument) as err:
        check_tenant(name)
    assert err.value.field == "tenant"


def test_keys_are_random_and_named_by_a_prefix_of_their_hash():
    a, b = new_key(), new_key()
    assert a.secret != b.secret and a.secret.startswith("gk_") and len(a.secret) > 40
    assert a.key_id == a.digest[:16] and a.secret not in a.digest


def test_bearer_values():
    assert bearer("Bearer gk_x") == "gk_x"
    assert bearer("bearer  gk_x ") == "gk_x"
    assert bearer("Basic abc") == "" and bearer("gk_x") == ""


def test_failures_are_limited_per_address_and_refill():
    limiter = FailureLimiter(per_minute=3)
    for _ in range(3):
        assert limiter.blocked("10.0.0.1", 0.0) == 0
        limiter.failed("10.0.0.1", 0.0)
    assert limiter.blocked("10.0.0.1", 0.0) == pytest.approx(20.0)
    assert limiter.blocked("10.0.0.2", 0.0) == 0  # another address is not slowed
    assert limiter.blocked("10.0.0.1", 20.0) == 0  # one more try after a third of a minute


def test_peer_host_drops_the_port():
    assert peer_host("ipv4:10.1.2.3:5555") == "10.1.2.3"
    assert peer_host("ipv6:[::1]:5555") == "[::1]"
    assert peer_host("unix:/tmp/s") == "unix:/tmp/s"


def test_the_readme_role_table_is_the_code_s():
    """The table people read is made from METHOD_ROLES; paste ``guard.access.role_table()`` when this fails."""
    readme = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    assert role_table() in readme, "docs/api.md role table differs from the code's:\n" + role_table()


def test_the_proto_s_role_comments_name_each_role_s_methods():
    """The .proto's Role comments list exactly the methods the code lets each role call."""
    proto = (REPO / "protos/guard/v1/guard.proto").read_text(encoding="utf-8")
    body = proto[proto.index("enum Role {"):proto.index("}", proto.index("enum Role {"))]
    comments: dict[str, str] = {}
    gathered: list[str] = []
    for line in body.splitlines()[1:]:
        line = line.strip()
        if line.startswith("//"):
            gathered.append(line[2:].strip())
        elif "=" in line:
            comments[line.split("=")[0].strip()] = " ".join(gathered)
            gathered = []
    named = {role: {m for m in re.findall(r"[A-Z][A-Za-z]+", comments[role.name]) if m in METHOD_ROLES} for role in Role}
    others = {m for role in Role if role is not Role.ADMIN for m in methods_of(role)}
    for role in Role:
        expected = {m for m in methods_of(role) if m not in others} if role is Role.ADMIN else set(methods_of(role))
        assert named[role] == expected, role
    assert set(methods_of(Role.ADMIN)) == set(METHOD_ROLES)  # what "everything ... and" claims


def test_the_acting_agent_is_the_key_s():
    grant = Grant("k1", "acme", frozenset({Role.SUPPORT}), "amy")
    assert grant.acting_agent("") == "amy" and grant.acting_agent("amy") == "amy"
    with pytest.raises(PermissionDenied, match=r"^agent: "):
        grant.acting_agent("bob")
