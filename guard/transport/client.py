"""A small blocking client for the terminal commands; answers come back as plain dicts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import grpc
from google.protobuf import field_mask_pb2, json_format

from guard.transport.mapping import ms_to_ts
from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc


def _dict(msg: Any) -> dict[str, Any]:
    out: dict[str, Any] = json_format.MessageToDict(msg, preserving_proto_field_name=True,
                                                    always_print_fields_with_no_presence=True)
    return out


class _WithKey(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Adds ``authorization: Bearer <key>`` to every call on the channel."""

    def __init__(self, key: str) -> None:
        self.metadata = (("authorization", f"Bearer {key}"),)

    def _details(self, details: Any) -> Any:
        return details._replace(metadata=tuple(details.metadata or ()) + self.metadata)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)


@dataclass(frozen=True)
class ClientTls:
    """PEM bytes: the CA the server's certificate must chain to, and the client's own certificate for mutual TLS."""

    server_ca: bytes
    client_cert: bytes | None = None
    client_key: bytes | None = None


def connect(target: str, key: str | None, tls: ClientTls | None = None,
            options: list[tuple[str, Any]] | None = None) -> grpc.Channel:
    """A blocking channel to guard that sends ``key`` with every call (TLS when ``tls`` is given)."""
    if tls is None:
        channel = grpc.insecure_channel(target, options=options)
    else:
        credentials = grpc.ssl_channel_credentials(tls.server_ca, tls.client_key, tls.client_cert)
        channel = grpc.secure_channel(target, credentials, options=options)
    return grpc.intercept_channel(channel, _WithKey(key)) if key else channel


class Client:
    def __init__(self, target: str, key: str | None = None, *, tls: ClientTls | None = None,
                 timeout_s: float = 5.0) -> None:
        self.channel = connect(target, key, tls)
        self.stub = pb_grpc.EngagementGuardStub(self.channel)  # type: ignore[no-untyped-call]
        self.desk = pb_grpc.RecoveryDeskStub(self.channel)  # type: ignore[no-untyped-call]
        self.admin = pb_grpc.AdminStub(self.channel)  # type: ignore[no-untyped-call]
        self.timeout = timeout_s

    def close(self) -> None:
        self.channel.close()

    def check(self, user_id: str, channel: str, category: str, *, campaign_id: str = "", touch_id: str = "",
              touch_class: str = "MARKETING", dry_run: bool = False, send_at: datetime | None = None,
              timing: str = "AS_SOON_AS_ALLOWED") -> dict[str, Any]:
        req = pb.CheckTouchRequest(user_id=user_id, channel=channel, category=category, campaign_id=campaign_id,
                                   touch_id=touch_id, touch_class=pb.TouchClass.Value(touch_class), dry_run=dry_run,
                                   timing=pb.Timing.Value(timing))
        if send_at is not None:
            req.send_at.CopyFrom(ms_to_ts(int(send_at.timestamp() * 1000)))
        return _dict(self.stub.CheckTouch(req, timeout=self.timeout))

    def consent_history(self, user_id: str, page_size: int = 500) -> list[dict[str, Any]]:
        """The consent ledger, newest first, every page of it."""
        events: list[dict[str, Any]] = []
        token = ""
        while True:
            page = self.stub.ListConsentEvents(pb.ListConsentEventsRequest(user_id=user_id, page_size=page_size,
                                                                           page_token=token), timeout=self.timeout)
            events += [_dict(e) for e in page.events]
            token = page.next_page_token
            if not token:
                return events

    def get_preferences(self, user_id: str) -> dict[str, Any]:
        return _dict(self.stub.GetPreferences(pb.GetPreferencesRequest(user_id=user_id), timeout=self.timeout))

    def update_preferences(self, user_id: str, *, channels: dict[str, bool], categories: dict[str, bool],
                           quiet_hours: tuple[str, str, str] | None, clear_quiet_hours: bool,
                           paused_until: datetime | None, max_per_week: int | None, unsubscribed_all: bool | None,
                           source: str, actor: str, expected_version: int | None,
                           channel_scopes: dict[str, str] | None = None) -> dict[str, Any]:
        prefs = pb.Preferences(user_id=user_id, channels=channels, categories=categories,
                               channel_scopes=channel_scopes or {})
        paths = [f"channels.{k}" for k in channels] + [f"categories.{k}" for k in categories]
        if quiet_hours is not None:
            tz, start, end = quiet_hours
            prefs.quiet_hours.CopyFrom(pb.QuietHours(time_zone=tz, start=start, end=end))
            paths.append("quiet_hours")
        elif clear_quiet_hours:
            paths.append("quiet_hours")
        if paused_until is not None:
            if paused_until.timestamp() > 0:
                prefs.paused_until.CopyFrom(ms_to_ts(int(paused_until.timestamp() * 1000)))
            paths.append("paused_until")
        if max_per_week is not None:
            prefs.max_marketing_per_week = max_per_week
            paths.append("max_marketing_per_week")
        if unsubscribed_all is not None:
            prefs.unsubscribed_all = unsubscribed_all
            paths.append("unsubscribed_all")
        req = pb.UpdatePreferencesRequest(preferences=prefs, update_mask=field_mask_pb2.FieldMask(paths=paths),
                                          source=source, actor=actor)
        if expected_version is not None:
            req.expected_version = expected_version
        return _dict(self.stub.UpdatePreferences(req, timeout=self.timeout))

    def user_state(self, user_id: str) -> dict[str, Any]:
        return _dict(self.stub.GetUserState(pb.GetUserStateRequest(user_id=user_id), timeout=self.timeout))

    def reply(self, user_id: str, text: str, *, channel: str, reply_id: str, campaign_id: str = "",
              in_reply_to: str = "") -> dict[str, Any]:
        req = pb.RecordReplyRequest(user_id=user_id, text=text, channel=channel, reply_id=reply_id,
                                    campaign_id=campaign_id, in_reply_to_touch_id=in_reply_to)
        return _dict(self.stub.RecordReply(req, timeout=self.timeout))

    def engagement(self, touch_id: str, user_id: str, event: str, *, provider: str = "", channel: str = "",
                   detail: str = "", occurred_at: datetime | None = None) -> dict[str, Any]:
        req = pb.EngagementEvent(touch_id=touch_id, user_id=user_id, event=pb.EngagementEvent.Kind.Value(event),
                                 provider=provider, channel=channel, detail=detail)
        if occurred_at is not None:
            req.occurred_at.CopyFrom(ms_to_ts(int(occurred_at.timestamp() * 1000)))
        return _dict(self.stub.RecordEngagement(req, timeout=self.timeout))

    def list_tasks(self, status: str = "", page_size: int = 50, page_token: str = "") -> dict[str, Any]:
        req = pb.ListRecoveryTasksRequest(status=pb.TaskStatus.Value(status or "TASK_STATUS_UNSPECIFIED"), page_size=page_size,
                                          page_token=page_token)
        return _dict(self.desk.ListRecoveryTasks(req, timeout=self.timeout))

    def claim(self, task_id: str, agent: str) -> dict[str, Any]:
        return _dict(self.desk.ClaimRecoveryTask(pb.ClaimRecoveryTaskRequest(task_id=task_id, agent=agent),
                                                 timeout=self.timeout))

    def resolve(self, task_id: str, agent: str, outcome: str, note: str, lift_hold: bool) -> dict[str, Any]:
        req = pb.ResolveRecoveryTaskRequest(task_id=task_id, agent=agent, outcome=pb.TaskOutcome.Value(outcome),
                                            note=note, lift_hold=lift_hold)
        return _dict(self.desk.ResolveRecoveryTask(req, timeout=self.timeout))

    def watch(self, consumer: str) -> Iterator[dict[str, Any]]:
        for task in self.desk.WatchRecoveryTasks(pb.WatchRecoveryTasksRequest(consumer=consumer)):
            yield _dict(task)

    def cancel(self, user_id: str, touch_id: str) -> dict[str, Any]:
        return _dict(self.stub.CancelTouch(pb.CancelTouchRequest(user_id=user_id, touch_id=touch_id),
                                           timeout=self.timeout))

    # -- data-subject requests -----------------------------------------------------------------

    def export_user(self, user_id: str) -> dict[str, Any]:
        answer = self.stub.ExportUserData(pb.ExportUserDataRequest(user_id=user_id), timeout=self.timeout * 6)
        document: dict[str, Any] = json.loads(answer.document)
        return document

    def erase_user(self, user_id: str, actor: str, reason: str) -> dict[str, Any]:
        return _dict(self.stub.EraseUser(pb.EraseUserRequest(user_id=user_id, actor=actor, reason=reason),
                                         timeout=self.timeout * 6))

    def preference_link(self, user_id: str, ttl_s: int = 0, locale: str = "", topic: str = "",
                        campaign_id: str = "") -> dict[str, Any]:
        req = pb.CreatePreferenceLinkRequest(user_id=user_id, locale=locale, topic=topic, campaign_id=campaign_id)
        if ttl_s:
            req.ttl.FromSeconds(ttl_s)
        return _dict(self.stub.CreatePreferenceLink(req, timeout=self.timeout))

    def rotate_link_secret(self, tenant: str, retire_previous: bool) -> dict[str, Any]:
        return _dict(self.admin.RotateLinkSecret(pb.RotateLinkSecretRequest(tenant=tenant, retire_previous=retire_previous),
                                                 timeout=self.timeout))

    def set_hook_secret(self, provider: str, name: str, value: str, tenant: str = "") -> dict[str, Any]:
        return _dict(self.admin.SetHookSecret(pb.SetHookSecretRequest(tenant=tenant, provider=provider, name=name,
                                                                      value=value), timeout=self.timeout))

    def webhooks(self, command: str, tenant: str = "", *, url: str = "", events: list[str] | None = None,
                 endpoint_id: str = "", fmt: str = "", language: str = "", robot_secret: str = "") -> dict[str, Any]:
        """``guard webhooks add|list|remove|rotate-secret|test``."""
        one = pb.WebhookRequest(tenant=tenant, endpoint_id=endpoint_id)
        if command == "add":
            answer: Any = self.admin.AddWebhook(pb.AddWebhookRequest(
                tenant=tenant, url=url, events=events or [], format=fmt, language=language, robot_secret=robot_secret),
                timeout=self.timeout)
        elif command == "list":
            answer = self.admin.ListWebhooks(pb.ListWebhooksRequest(tenant=tenant), timeout=self.timeout)
        elif command == "remove":
            answer = self.admin.RemoveWebhook(one, timeout=self.timeout)
        elif command == "replay":
            answer = self.admin.ReplayWebhook(one, timeout=self.timeout)
        elif command == "rotate-secret":
            answer = self.admin.RotateWebhookSecret(one, timeout=self.timeout)
        else:
            answer = self.admin.TestWebhook(one, timeout=self.timeout)
        return _dict(answer)

    def hook_receivers(self, tenant: str = "") -> dict[str, Any]:
        return _dict(self.admin.ListHookReceivers(pb.ListHookReceiversRequest(tenant=tenant), timeout=self.timeout))

    def set_contacts(self, user_id: str, addresses: list[str]) -> dict[str, Any]:
        return _dict(self.stub.SetContactPoints(pb.SetContactPointsRequest(user_id=user_id, addresses=addresses),
                                                timeout=self.timeout))

    # -- keys and policy -------------------------------------------------------------------------

    def create_key(self, tenant: str, roles: list[str], name: str) -> tuple[dict[str, Any], str]:
        answer = self.admin.CreateApiKey(pb.CreateApiKeyRequest(
            tenant=tenant, roles=[pb.Role.Value(r.upper()) for r in roles], name=name), timeout=self.timeout)
        return _dict(answer.key), answer.secret

    def list_keys(self, tenant: str) -> dict[str, Any]:
        return _dict(self.admin.ListApiKeys(pb.ListApiKeysRequest(tenant=tenant), timeout=self.timeout))

    def revoke_key(self, tenant: str, key_id: str) -> dict[str, Any]:
        return _dict(self.admin.RevokeApiKey(pb.RevokeApiKeyRequest(tenant=tenant, key_id=key_id), timeout=self.timeout))

    def apply_policy(self, tenant: str, text: str, actor: str) -> dict[str, Any]:
        return _dict(self.admin.ApplyPolicy(pb.ApplyPolicyRequest(tenant=tenant, policy_yaml=text, actor=actor),
                                            timeout=self.timeout))

    def policy(self, tenant: str) -> pb.PolicyInForce:
        answer: pb.PolicyInForce = self.admin.GetPolicy(pb.GetPolicyRequest(tenant=tenant), timeout=self.timeout)
        return answer

    # -- health ---------------------------------------------------------------------------------

    def experience(self, window: str) -> dict[str, Any]:
        return _dict(self.stub.GetExperienceHealth(pb.GetExperienceHealthRequest(window=window), timeout=self.timeout))

    def campaign_health(self, campaign_id: str, strategy_id: str, window: str) -> dict[str, Any]:
        return _dict(self.stub.GetCampaignHealth(pb.GetCampaignHealthRequest(
            campaign_id=campaign_id, strategy_id=strategy_id, window=window), timeout=self.timeout))

    def ranked_health(self, strategies: bool, window: str, page_size: int = 500) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            answer = self.stub.ListCampaignHealth(pb.ListCampaignHealthRequest(
                strategies=strategies, window=window, page_size=page_size, page_token=token), timeout=self.timeout * 6)
            items += [_dict(i) for i in answer.items]
            token = answer.next_page_token
            if not token:
                return items
