"""The Admin service: a tenant's API keys and policy.

Every call acts on the caller's own tenant unless it names another, which needs the operator
role. A key may hand out only roles its holder has (an admin cannot mint an operator).
"""

from __future__ import annotations

from typing import Any

from guard import logs, policy
from guard.access.authn import Authenticator
from guard.access.keys import Grant, Role, check_tenant, new_key
from guard.domain import clock
from guard.errors import InvalidArgument, NotFound, PermissionDenied
from guard.store.control import KeyRecord
from guard.store.webhooks import Delivery, Endpoint
from guard.transport.calls import Caller, rpc
from guard.transport.mapping import ms_to_ts
from guard.usecases.hooks import HookService
from guard.usecases.tenants import Tenants
from guard.usecases.webhooks import Outbound
from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from guard.validate import check_name, shown

log = logs.get("guard.admin")

_ROLE_TO_PB = {Role.SENDER: pb.SENDER, Role.PREFERENCES: pb.PREFERENCES, Role.SUPPORT: pb.SUPPORT, Role.ADMIN: pb.ADMIN,
               Role.OPERATOR: pb.OPERATOR}
_PB_TO_ROLE = {v: k for k, v in _ROLE_TO_PB.items()}
MAX_POLICY_BYTES = 256 * 1024


def target_tenant(grant: Grant, requested: str) -> str:
    """The tenant a provisioning call acts on: the caller's own, or (operators only) the one named."""
    if not requested:
        return grant.tenant
    check_tenant(requested)
    if not grant.may_act_for(requested):
        raise PermissionDenied("this key may act for its own tenant only (naming another needs the operator role)")
    return requested


def _webhook(endpoint: Endpoint, state: Delivery) -> pb.Webhook:
    out = pb.Webhook(endpoint_id=endpoint.endpoint_id, url=endpoint.url, events=endpoint.events,
                     delivered=state.delivered, failed=state.failed, last_error=state.last_error,
                     format=endpoint.format, language=endpoint.language)
    out.created_at.CopyFrom(ms_to_ts(endpoint.created_ms))
    if state.first_failed_ms:
        out.failing_since.CopyFrom(ms_to_ts(state.first_failed_ms))
    if state.disabled_ms:
        out.disabled_at.CopyFrom(ms_to_ts(state.disabled_ms))
    return out


def key_to_pb(record: KeyRecord) -> pb.ApiKey:
    out = pb.ApiKey(key_id=record.key_id, tenant=record.tenant, name=record.name,
                    roles=[_ROLE_TO_PB[Role(r)] for r in record.roles if r in _ROLE_TO_PB])
    out.created_at.CopyFrom(ms_to_ts(record.created_ms))
    if record.last_used_ms:
        out.last_used_at.CopyFrom(ms_to_ts(record.last_used_ms))
    if record.revoked_ms:
        out.revoked_at.CopyFrom(ms_to_ts(record.revoked_ms))
    return out


class AdminServicer(pb_grpc.AdminServicer):
    def __init__(self, tenants: Tenants, auth: Authenticator, hooks: HookService | None = None,
                 outbound: Outbound | None = None) -> None:
        self.tenants = tenants
        self.auth = auth
        self.hooks = hooks
        self.outbound = outbound

    @rpc
    async def CreateApiKey(self, caller: Caller, request: pb.CreateApiKeyRequest, context: Any,
                           log_fields: dict[str, Any]) -> pb.CreateApiKeyResponse:
        tenant = target_tenant(caller.grant, request.tenant)
        unknown = [r for r in request.roles if r not in _PB_TO_ROLE]
        if unknown or not request.roles:
            raise InvalidArgument("roles", "name at least one of SENDER, PREFERENCES, SUPPORT, ADMIN, OPERATOR")
        roles = frozenset(_PB_TO_ROLE[r] for r in request.roles)
        if Role.OPERATOR in roles and Role.OPERATOR not in caller.grant.roles:
            raise PermissionDenied("only an operator may create an operator key")
        name = request.name.strip()
        if not name:
            raise InvalidArgument("name", "is required: say who or what will use the key")
        check_name(name, "name")
        key = new_key()
        now = clock.system_clock()
        await self.tenants.control.create_key(key.key_id, key.digest, tenant, [r.value for r in roles], name, now)
        log_fields.update(created=key.key_id, for_tenant=tenant, roles=sorted(r.value for r in roles))
        record = KeyRecord(key.key_id, key.digest, tenant, tuple(sorted(r.value for r in roles)), name, now, 0, 0)
        return pb.CreateApiKeyResponse(key=key_to_pb(record), secret=key.secret)

    @rpc
    async def ListApiKeys(self, caller: Caller, request: pb.ListApiKeysRequest, context: Any,
                          log_fields: dict[str, Any]) -> pb.ListApiKeysResponse:
        tenant = target_tenant(caller.grant, request.tenant)
        records = await self.tenants.control.keys(tenant)
        log_fields.update(items=len(records))
        return pb.ListApiKeysResponse(keys=[key_to_pb(r) for r in records])

    @rpc
    async def RevokeApiKey(self, caller: Caller, request: pb.RevokeApiKeyRequest, context: Any,
                           log_fields: dict[str, Any]) -> pb.ApiKey:
        tenant = target_tenant(caller.grant, request.tenant)
        key_id = request.key_id.strip()
        if len(key_id) != 16 or any(c not in "0123456789abcdef" for c in key_id):
            raise InvalidArgument("key_id", f"{shown(key_id)} is not a key id (16 hex digits, as guard keys list shows)")
        status = await self.tenants.control.revoke_key(tenant, key_id, clock.system_clock())
        if status == "missing":
            raise NotFound(f"key_id: no key {key_id} in tenant {tenant}")
        record = await self.tenants.control.key(key_id)
        assert record is not None
        self.auth.forget()  # this process at once; the others at their next poll
        log_fields.update(revoked=key_id, again=status == "again")
        return key_to_pb(record)

    @rpc
    async def ApplyPolicy(self, caller: Caller, request: pb.ApplyPolicyRequest, context: Any,
                          log_fields: dict[str, Any]) -> pb.PolicyInForce:
        tenant = target_tenant(caller.grant, request.tenant)
        if len(request.policy_yaml.encode("utf-8")) > MAX_POLICY_BYTES:
            raise InvalidArgument("policy_yaml", f"is larger than {MAX_POLICY_BYTES // 1024} KiB")
        try:
            policy.parse(request.policy_yaml, source=f"tenant {tenant}")
        except policy.PolicyError as exc:
            raise InvalidArgument("policy_yaml", str(exc)) from None
        actor = request.actor.strip() or caller.grant.name
        check_name(actor, "actor")
        now = clock.system_clock()
        version = await self.tenants.control.apply_policy(tenant, request.policy_yaml, actor, now)
        await self.tenants.refresh()  # this process at once; the others at their next poll
        log_fields.update(for_tenant=tenant, version=version)
        return self._in_force(tenant, request.policy_yaml, "tenant", version, now, actor)

    @rpc
    async def RotateLinkSecret(self, caller: Caller, request: pb.RotateLinkSecretRequest, context: Any,
                               log_fields: dict[str, Any]) -> pb.RotateLinkSecretResponse:
        tenant = target_tenant(caller.grant, request.tenant)
        current, accepted = await self.tenants.links.rotate(tenant, request.retire_previous)
        log_fields.update(for_tenant=tenant, retire_previous=request.retire_previous)
        return pb.RotateLinkSecretResponse(secret_id=current, accepted_ids=accepted)

    @rpc
    async def SetHookSecret(self, caller: Caller, request: pb.SetHookSecretRequest, context: Any,
                            log_fields: dict[str, Any]) -> pb.HookReceivers:
        tenant = target_tenant(caller.grant, request.tenant)
        hooks = self._hooks()
        await hooks.set_secret(tenant, request.provider, request.name, request.value)
        log_fields.update(for_tenant=tenant, provider=request.provider, secret=request.name)  # never the value
        return await self._receivers(hooks, tenant)

    @rpc
    async def ListHookReceivers(self, caller: Caller, request: pb.ListHookReceiversRequest, context: Any,
                                log_fields: dict[str, Any]) -> pb.HookReceivers:
        return await self._receivers(self._hooks(), target_tenant(caller.grant, request.tenant))

    @rpc
    async def AddWebhook(self, caller: Caller, request: pb.AddWebhookRequest, context: Any,
                         log_fields: dict[str, Any]) -> pb.WebhookSecret:
        tenant = target_tenant(caller.grant, request.tenant)
        endpoint, secret = await self._outbound().of(tenant).add(request.url, list(request.events), request.format,
                                                                 request.language or "en", request.robot_secret)
        log_fields.update(for_tenant=tenant, endpoint=endpoint.endpoint_id)
        return pb.WebhookSecret(endpoint=_webhook(endpoint, Delivery()), secret=secret)

    @rpc
    async def ListWebhooks(self, caller: Caller, request: pb.ListWebhooksRequest, context: Any,
                           log_fields: dict[str, Any]) -> pb.Webhooks:
        tenant = target_tenant(caller.grant, request.tenant)
        return await self._webhooks(tenant)

    @rpc
    async def RemoveWebhook(self, caller: Caller, request: pb.WebhookRequest, context: Any,
                            log_fields: dict[str, Any]) -> pb.Webhooks:
        tenant = target_tenant(caller.grant, request.tenant)
        await self._outbound().of(tenant).remove(request.endpoint_id)
        return await self._webhooks(tenant)

    @rpc
    async def RotateWebhookSecret(self, caller: Caller, request: pb.WebhookRequest, context: Any,
                                  log_fields: dict[str, Any]) -> pb.WebhookSecret:
        tenant = target_tenant(caller.grant, request.tenant)
        service = self._outbound().of(tenant)
        secret = await service.rotate(request.endpoint_id)
        endpoint, state = await service.one(request.endpoint_id)
        return pb.WebhookSecret(endpoint=_webhook(endpoint, state), secret=secret)

    @rpc
    async def TestWebhook(self, caller: Caller, request: pb.WebhookRequest, context: Any,
                          log_fields: dict[str, Any]) -> pb.WebhookTest:
        status, error = await self._outbound().of(target_tenant(caller.grant, request.tenant)).test(request.endpoint_id)
        log_fields.update(status=status)
        return pb.WebhookTest(status=status, error=error)

    @rpc
    async def ReplayWebhook(self, caller: Caller, request: pb.WebhookRequest, context: Any,
                            log_fields: dict[str, Any]) -> pb.WebhookReplay:
        service = self._outbound().of(target_tenant(caller.grant, request.tenant))
        delivered, failing, gone = await service.replay(request.endpoint_id)
        log_fields.update(delivered=delivered, failing=failing, gone=gone)
        return pb.WebhookReplay(delivered=delivered, failing=failing, gone=gone)

    def _outbound(self) -> Outbound:
        if self.outbound is None:
            raise InvalidArgument("url", "outbound webhooks are off in this process")
        return self.outbound

    async def _webhooks(self, tenant: str) -> pb.Webhooks:
        return pb.Webhooks(tenant=tenant, endpoints=[_webhook(e, s) for e, s in await self._outbound().of(tenant).list()])

    def _hooks(self) -> HookService:
        if self.hooks is None:
            raise InvalidArgument("provider", "the webhook receivers are off in this process (GUARD_HTTP_LISTEN)")
        return self.hooks

    async def _receivers(self, hooks: HookService, tenant: str) -> pb.HookReceivers:
        base = self.tenants.links.public_url.rstrip("/")
        out = pb.HookReceivers(tenant=tenant)
        for provider, names in (await hooks.store.configured(tenant)).items():
            url = f"{base}/hooks/{tenant}/{provider}"
            if provider == "aliyun":  # Aliyun does not sign: the secret is the URL's last part, shown to admins only
                url += "/" + (await hooks.store.secrets(tenant, provider, clock.system_clock())).get("path_secret", [""])[0]
            out.receivers.append(pb.HookReceiver(provider=provider, url=url, secrets=names))
        return out

    @rpc
    async def GetPolicy(self, caller: Caller, request: pb.GetPolicyRequest, context: Any,
                        log_fields: dict[str, Any]) -> pb.PolicyInForce:
        tenant = target_tenant(caller.grant, request.tenant)
        record = await self.tenants.control.policy(tenant)
        if record is None:
            return self._in_force(tenant, self.tenants.default_policy.text, "default", 0, 0, "")
        return self._in_force(tenant, record.yaml, "tenant", record.version, record.applied_ms, record.actor)

    @staticmethod
    def _in_force(tenant: str, text: str, source: str, version: int, applied_ms: int, actor: str) -> pb.PolicyInForce:
        out = pb.PolicyInForce(tenant=tenant, policy_yaml=text, source=source, version=version, applied_by=actor)
        if applied_ms:
            out.applied_at.CopyFrom(ms_to_ts(applied_ms))
        return out
