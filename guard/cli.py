"""``guard``: run the service, validate a policy, and a thin client for people at a terminal."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from guard import logs
from guard.providers import NAMES
from guard.settings import Settings


def _bool_pairs(values: list[str], flag: str) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for item in values:
        name, _, state = item.partition("=")
        if state not in ("on", "off") or not name:
            raise SystemExit(f"guard: {flag} expects NAME=on or NAME=off, got {item!r}")
        out[name] = state == "on"
    return out


def _channel_pairs(values: list[str]) -> tuple[dict[str, bool], dict[str, str]]:
    """--channel NAME=on | NAME=off | NAME=off:marketing | NAME=off:all (how far the closing reaches)."""
    channels: dict[str, bool] = {}
    scopes: dict[str, str] = {}
    for item in values:
        name, _, state = item.partition("=")
        state, _, scope = state.partition(":")
        if not name or state not in ("on", "off") or (scope and (state == "on" or scope not in ("marketing", "all"))):
            raise SystemExit(f"guard: --channel expects NAME=on, NAME=off, NAME=off:marketing or NAME=off:all, "
                             f"got {item!r}")
        channels[name] = state == "on"
        if scope:
            scopes[name] = scope
    return channels, scopes


def _when(value: str, flag: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise SystemExit(f"guard: {flag} expects an ISO 8601 time such as 2026-12-01T09:00:00+08:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _seconds(value: str, flag: str) -> int:
    from guard.policy import PolicyError, parse_duration

    try:
        return parse_duration(value, flag) // 1000
    except PolicyError:
        raise SystemExit(f"guard: {flag} expects a duration such as 12h or 30d, got {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guard", description="The feedback-aware engagement guard.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the gRPC service")
    serve.add_argument("--listen", help="host:port (GUARD_LISTEN; default 127.0.0.1:50051)")
    serve.add_argument("--data-dir", type=Path, help="embedded Redis data (GUARD_DATA_DIR)")
    serve.add_argument("--policy", type=Path, help="policy file (GUARD_POLICY)")
    serve.add_argument("--redis-url", help="existing Redis (GUARD_REDIS_URL); default: embedded")
    serve.add_argument("--metrics-listen", help="host:port for Prometheus (GUARD_METRICS_LISTEN)")
    serve.add_argument("--workers", type=int, help="serving processes on the port (GUARD_WORKERS; default 1)")
    serve.add_argument("--http-listen", help="host:port of the pages (GUARD_HTTP_LISTEN; default 127.0.0.1:8080; "
                                             "'' turns them off)")
    serve.add_argument("--public-url", help="the pages' address as people reach it (GUARD_PUBLIC_URL)")
    for internal in ("_worker", "_scorer"):  # started by the supervisor of --workers N, configured by environment
        sub.add_parser(internal)  # no help: not listed in guard --help

    def client_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--server", help="host:port of guard (GUARD_SERVER; default 127.0.0.1:50051)")

    store = sub.add_parser("store", help="the store's identity: is it still the store guard wrote to? (talks to "
                                         "Redis directly: GUARD_REDIS_URL, or the embedded Redis of a running serve)")
    store_sub = store.add_subparsers(dest="store_command", required=True)
    status = store_sub.add_parser("status", help="the identity, shards that lost it, what this host remembers, "
                                                 "the history")
    adopt = store_sub.add_parser("adopt", help="this store is the intended one (after a reset: it lost what guard "
                                               "wrote, and you accept that, or restored what you could)")
    adopt.add_argument("--actor", required=True, help="who decides (kept in the store's audit)")
    adopt.add_argument("--reason", required=True, help="why (kept in the store's audit)")
    for command in (status, adopt):
        command.add_argument("--data-dir", type=Path, help="where admin.key and store.id are (GUARD_DATA_DIR)")
        command.add_argument("--redis-url", help="the store (GUARD_REDIS_URL); default: the embedded Redis of a "
                                                 "running guard serve in the data directory")

    pol = sub.add_parser("policy", help="policy tools")
    pol_sub = pol.add_subparsers(dest="policy_command", required=True)
    pol_check = pol_sub.add_parser("check", help="validate a policy file")
    pol_check.add_argument("file", type=Path)
    pol_apply = pol_sub.add_parser("apply", help="validate a policy file and put it in force for a tenant")
    client_args(pol_apply)
    pol_apply.add_argument("file", type=Path)
    pol_apply.add_argument("--tenant", default="", help="default: the key's own tenant")
    pol_apply.add_argument("--actor", default="", help="who applies it (default: the key's name)")
    pol_show = pol_sub.add_parser("show", help="print the policy in force for a tenant")
    client_args(pol_show)
    pol_show.add_argument("--tenant", default="", help="default: the key's own tenant")

    keys = sub.add_parser("keys", help="API keys of a tenant")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    key_create = keys_sub.add_parser("create", help="make a key; the key itself is printed alone on the last line")
    client_args(key_create)
    key_create.add_argument("--tenant", default="", help="default: the caller's tenant; another needs an operator key")
    key_create.add_argument("--role", action="append", required=True, dest="roles",
                            choices=["sender", "preferences", "support", "admin", "operator"])
    key_create.add_argument("--name", required=True, help="who or what will use the key")
    key_list = keys_sub.add_parser("list")
    client_args(key_list)
    key_list.add_argument("--tenant", default="")
    key_revoke = keys_sub.add_parser("revoke")
    client_args(key_revoke)
    key_revoke.add_argument("key_id")
    key_revoke.add_argument("--tenant", default="")

    health = sub.add_parser("health", help="experience health and campaigns by fatigue index, as tables")
    client_args(health)
    health.add_argument("--window", default="7d", choices=["24h", "7d"])
    health.add_argument("--strategies", action="store_true", help="strategies instead of campaigns")
    health.add_argument("--json", action="store_true", help="the figures as JSON instead of tables")

    user = sub.add_parser("user", help="a data subject's requests: export, erase")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    export = user_sub.add_parser("export", help="everything guard holds on a user, as one JSON document")
    client_args(export)
    export.add_argument("user_id")
    erase = user_sub.add_parser("erase", help="erase a user, keeping only the suppression record")
    client_args(erase)
    erase.add_argument("user_id")
    erase.add_argument("--actor", required=True, help="who asked for the erasure")
    erase.add_argument("--reason", default="")

    check = sub.add_parser("check", help="ask whether a touch may go out")
    client_args(check)
    check.add_argument("user_id")
    check.add_argument("channel")
    check.add_argument("category")
    check.add_argument("--campaign", default="")
    check.add_argument("--touch-id", default="", help="record the touch under this id; without it the check is a dry run")
    check.add_argument("--class", dest="touch_class", default="MARKETING",
                       choices=["MARKETING", "TRANSACTIONAL", "SERVICE"])
    check.add_argument("--dry-run", action="store_true")
    check.add_argument("--send-at", help="ISO 8601 time to evaluate at")
    check.add_argument("--timing", default="AS_SOON_AS_ALLOWED", choices=["AS_SOON_AS_ALLOWED", "BEST_HOUR"],
                       help="BEST_HOUR: wait for the user's most responsive hour in the next 24 h (DEFER, BEST_TIME)")
    check.add_argument("--json", action="store_true", help="the answer as exact JSON (retry_after in seconds) for scripts")

    prefs = sub.add_parser("prefs", help="read or change a user's preferences")
    prefs_sub = prefs.add_subparsers(dest="prefs_command", required=True)
    get = prefs_sub.add_parser("get")
    client_args(get)
    get.add_argument("user_id")
    history = prefs_sub.add_parser("history", help="the consent ledger: every change, who made it and how it was "
                                                   "expressed (page, wording, language, address, browser)")
    client_args(history)
    history.add_argument("user_id")
    history.add_argument("--json", action="store_true", help="the events exactly as the API gives them")
    put = prefs_sub.add_parser("set")
    client_args(put)
    put.add_argument("user_id")
    put.add_argument("--channel", action="append", default=[], metavar="NAME=on|off[:marketing|:all]",
                     help="off closes the channel for what the policy says the source means; off:all stops every "
                          "message (where the policy offers it), off:marketing only marketing")
    put.add_argument("--category", action="append", default=[], metavar="NAME=on|off")
    put.add_argument("--quiet-hours", metavar="TZ,HH:MM,HH:MM")
    put.add_argument("--clear-quiet-hours", action="store_true")
    put.add_argument("--pause-until", metavar="ISO_TIME", help="'none' ends a pause")
    put.add_argument("--max-per-week", type=int)
    put.add_argument("--unsubscribe-all", action="store_true", default=None)
    put.add_argument("--resubscribe", action="store_true", default=None)
    put.add_argument("--source", default="support")
    put.add_argument("--actor", default="cli")
    put.add_argument("--expected-version", type=int)

    link = prefs_sub.add_parser("link", help="a signed address of the user's own preference page (and one-click "
                                             "unsubscribe) to put in a message")
    client_args(link)
    link.add_argument("user_id")
    link.add_argument("--ttl", default="", metavar="DURATION", help="how long it works: 12h, 30d ... (default 30d)")
    link.add_argument("--locale", default="", choices=["", "en", "zh"], help="the page's language (default: the browser's)")
    link.add_argument("--topic", default="", help="the message's topic: one-click unsubscribe closes only that topic "
                                                  "by email")
    link.add_argument("--campaign", default="", help="the message's campaign: the opt-out counts in its figures")

    links = sub.add_parser("links", help="the secrets that sign preference links")
    links_sub = links.add_subparsers(dest="links_command", required=True)
    rotate = links_sub.add_parser("rotate", help="sign new links with a new secret; older links keep working until "
                                                 "they expire, unless --retire-previous")
    client_args(rotate)
    rotate.add_argument("--tenant", default="", help="default: the key's own tenant")
    rotate.add_argument("--retire-previous", action="store_true", help="every link signed before stops working now")

    hooks = sub.add_parser("hooks", help="the providers' webhook receivers (POST /hooks/<tenant>/<provider>)")
    hooks_sub = hooks.add_subparsers(dest="hooks_command", required=True)
    hook_set = hooks_sub.add_parser("set", help="set a provider's secret for the tenant's receiver (the value it "
                                                "replaces is accepted 24 h more)")
    client_args(hook_set)
    hook_set.add_argument("provider", choices=NAMES)
    hook_set.add_argument("secret", metavar="NAME=VALUE",
                          help="sendgrid public_key=<verification key>, ses topic_arns=<arn,...>, mailgun "
                               "signing_key=<key>, postmark basic_auth=<user:password>, twilio auth_token=<token>, "
                               "aliyun path_secret=<random>, wecom token=… / encoding_aes_key=… / corp_id=…")
    hook_set.add_argument("--tenant", default="", help="default: the key's own tenant")
    hook_show = hooks_sub.add_parser("show", help="each receiver's URL, to paste into the provider's console")
    client_args(hook_show)
    hook_show.add_argument("--tenant", default="", help="default: the key's own tenant")

    webhooks = sub.add_parser("webhooks", help="endpoints that hear guard's events (Standard Webhooks)")
    webhooks_sub = webhooks.add_subparsers(dest="webhooks_command", required=True)
    wh_add = webhooks_sub.add_parser("add", help="an endpoint for the events named; its secret is printed once")
    client_args(wh_add)
    wh_add.add_argument("url")
    wh_add.add_argument("--events", nargs="+", required=True, metavar="EVENT",
                        help="task.opened task.claimed task.resolved brake.tripped brake.released")
    for name, what in (("list", "every endpoint and how its deliveries go"), ("remove", "stop delivering to one"),
                       ("rotate-secret", "a new secret; the old one signs beside it for 24 h"),
                       ("test", "send a signed ping now and print the answer"),
                       ("replay", "send again the deliveries given up on after 24 h of retries")):
        one = webhooks_sub.add_parser(name, help=what)
        client_args(one)
        if name != "list":
            one.add_argument("endpoint_id")
        one.add_argument("--tenant", default="", help="default: the key's own tenant")
    wh_add.add_argument("--tenant", default="", help="default: the key's own tenant")
    wh_add.add_argument("--format", default="standard", choices=["standard", "wecom_robot", "dingtalk", "slack"],
                        help="a team chat's robot instead of a Standard Webhooks endpoint (P1 tasks and brakes)")
    wh_add.add_argument("--language", default="en", choices=["zh", "en"], help="a robot's messages")
    wh_add.add_argument("--robot-secret", default="", help="DingTalk's signing secret (SEC…)")

    contacts = sub.add_parser("contacts", help="the phone numbers and addresses providers name a user by")
    contacts_sub = contacts.add_subparsers(dest="contacts_command", required=True)
    contacts_set = contacts_sub.add_parser("set", help="replace a user's contact points (kept as keyed hashes)")
    client_args(contacts_set)
    contacts_set.add_argument("user_id")
    contacts_set.add_argument("addresses", nargs="*", help="+8613800000000, alice@example.com ...")
    contacts_import = contacts_sub.add_parser("import", help="load contact points from a CSV file of user_id,address "
                                                             "rows (each user's rows replace what they had)")
    client_args(contacts_import)
    contacts_import.add_argument("file", type=Path)

    state = sub.add_parser("state", help="everything support needs to explain a decision")
    client_args(state)
    state.add_argument("user_id")

    reply = sub.add_parser("reply", help="record a user's reply (as the messaging inbox would)")
    client_args(reply)
    reply.add_argument("user_id")
    reply.add_argument("text")
    reply.add_argument("--channel", default="sms")
    reply.add_argument("--reply-id", default="", help="idempotency key (default: a new one)")
    reply.add_argument("--campaign", default="")
    reply.add_argument("--in-reply-to", default="", help="the touch_id this replies to")

    engagement = sub.add_parser("engagement", help="what a provider reports of a touch (as its webhook would)")
    engagement_sub = engagement.add_subparsers(dest="engagement_command", required=True)
    record = engagement_sub.add_parser("record", help="record a delivery, open, click, conversion, bounce, spam "
                                                      "complaint or unsubscribe of a touch")
    client_args(record)
    record.add_argument("touch_id")
    record.add_argument("user_id")
    record.add_argument("event", choices=["DELIVERED", "OPENED", "CLICKED", "CONVERTED", "BOUNCED", "SPAM_COMPLAINT",
                                          "UNSUBSCRIBED"])
    record.add_argument("--provider", default="cli", help="who reports it (ledgered as the actor of a closed channel)")
    record.add_argument("--channel", default="", help="the channel, when guard does not know the touch")
    record.add_argument("--detail", default="", help="a bounce's type: hard or soft")
    record.add_argument("--at", help="ISO 8601 time it happened (default now)")

    tasks = sub.add_parser("tasks", help="the support team's recovery desk")
    tasks_sub = tasks.add_subparsers(dest="tasks_command", required=True)
    watch = tasks_sub.add_parser("watch", help="print tasks as they come (one JSON line each)")
    client_args(watch)
    watch.add_argument("--consumer", required=True, help="this agent's or client's name")
    listing = tasks_sub.add_parser("list")
    client_args(listing)
    listing.add_argument("--status", choices=["OPEN", "CLAIMED", "RESOLVED"])
    listing.add_argument("--page-size", type=int, default=50)
    listing.add_argument("--page-token", default="")
    claim = tasks_sub.add_parser("claim")
    client_args(claim)
    claim.add_argument("task_id")
    claim.add_argument("--agent", default="", help="optional: the agent is always the key's (its name); a check")
    resolve = tasks_sub.add_parser("resolve")
    client_args(resolve)
    resolve.add_argument("task_id")
    resolve.add_argument("--agent", default="", help="optional: the agent is always the key's (its name); a check")
    resolve.add_argument("--outcome", required=True, choices=["RECOVERED", "NO_ACTION", "ESCALATED"])
    resolve.add_argument("--note", default="")
    resolve.add_argument("--lift-hold", action="store_true", help="end the user's marketing hold now")

    train = sub.add_parser("train-sentiment", help="train the bundled sentiment model")
    from guard.training.cli import build_parser as training_parser

    training_parser(train)
    return parser


def duration_text(seconds: float) -> str:
    """A wait as people read it: the two largest units (``9h 55m``, ``2d 3h``, ``45s``)."""
    left = round(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size}{unit}")
            left %= size
    return " ".join(parts[:2])


def check_text(answer: dict[str, Any], now: datetime) -> str:
    """``guard check``'s answer for a person: the decision and why, when to try again (in local time and UTC),
    the caps, the tier, what was recorded. ``--json`` keeps the exact answer for scripts."""
    reasons = ", ".join(answer.get("reasons", [])) or "no reason against it"
    lines = [f"{answer['decision']}: {reasons}"]
    if answer.get("retry_after"):
        wait = float(str(answer["retry_after"]).rstrip("s"))
        evaluated = answer.get("evaluated_at")  # the moment decided (--send-at, or now): the wait runs from it
        start = datetime.fromisoformat(evaluated.replace("Z", "+00:00")) if evaluated else now
        at = start + timedelta(seconds=wait)
        local = at.astimezone()
        utc = "" if local.utcoffset() == timedelta(0) else f" ({at:%H:%M} UTC)"
        lines.append(f"  try again in {duration_text(wait)}: at {local:%Y-%m-%d %H:%M} {local.tzname()}{utc}")
    for cap in answer.get("caps", []):
        window = duration_text(float(str(cap.get("window", "0s")).rstrip("s")))
        note = " (full)" if cap.get("exceeded") else ""
        lines.append(f"  cap {cap['rule_id']}: {cap.get('used', 0)} of {cap['limit']} in {window}{note}"
                     f"{' [shadow]' if cap.get('shadow') else ''}")
    if answer.get("tier"):
        lines.append(f"  engagement tier: {answer['tier']}")
    recorded = "recorded" if answer.get("recorded") else "not recorded (a dry run, or not allowed)"
    lines.append(f"  {'replayed: ' if answer.get('replayed') else ''}{recorded}")
    return "\n".join(lines) + "\n"


def _history_line(event: dict[str, Any]) -> str:
    """One ledger event as a person reads it: when, what changed from what to what, who, and how."""
    how = " ".join(f"{k}={v}" for k, v in sorted((event.get("evidence") or {}).items()))
    who = f"{event.get('source', '')}" + (f" ({event['actor']})" if event.get("actor") else "")
    return (f"{event.get('at', '')}  {event.get('field', '')}: {event.get('old_value', '')} -> "
            f"{event.get('new_value', '')}  by {who}  v{event.get('version', '')}" + (f"  [{how}]" if how else "") + "\n")


def _contact_rows(path: Path) -> dict[str, list[str]]:
    """``user_id,address`` rows (a header row naming user_id is skipped), grouped by user in file order."""
    import csv

    by_user: dict[str, list[str]] = {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            for line, row in enumerate(csv.reader(f), start=1):
                if not row or (line == 1 and row[0].strip().lower() == "user_id"):
                    continue
                if len(row) != 2 or not row[0].strip() or not row[1].strip():
                    raise SystemExit(f"guard contacts import: {path}:{line}: user_id,address is expected")
                by_user.setdefault(row[0].strip(), []).append(row[1].strip())
    except OSError as exc:
        raise SystemExit(f"guard contacts import: {path}: {exc.strerror}") from None
    return by_user


def _print(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _watch(client: Any, consumer: str, *, max_delay_s: float = 5.0) -> None:
    """Print tasks as they come; a server that restarts or drains is waited for, not a reason to exit."""
    import time

    import grpc

    retryable = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    delay = 0.5
    while True:
        try:
            for task in client.watch(consumer):
                delay = 0.5
                sys.stdout.write(json.dumps(task, ensure_ascii=False) + "\n")
                sys.stdout.flush()
            reason = "the server ended the stream"
        except grpc.RpcError as exc:
            if exc.code() not in retryable:
                raise
            reason = f"{exc.code().name}: {exc.details()}"
        sys.stderr.write(f"guard: {reason}; watching again in {delay:g}s\n")
        sys.stderr.flush()
        time.sleep(delay)
        delay = min(delay * 2, max_delay_s)


def _is_loopback(target: str) -> bool:
    host = target.rpartition(":")[0].strip("[]") or target
    return host in ("localhost", "::1") or host.startswith("127.")


def api_key_for(settings: Settings) -> str:
    """GUARD_API_KEY, or the admin key a local embedded server wrote into its data directory."""
    if settings.api_key:
        return settings.api_key.strip()
    from guard.access.admin_key import ADMIN_KEY_FILE

    path = settings.data_dir / ADMIN_KEY_FILE
    if _is_loopback(settings.server):
        try:
            return path.read_text(encoding="ascii").strip()
        except OSError:
            pass
    raise SystemExit(f"guard: no API key: set GUARD_API_KEY (a local guard serve writes one to {path} on its first "
                     "start)")


def _client_tls(settings: Settings) -> Any:
    from guard.transport.client import ClientTls

    if settings.server_ca is None:
        if settings.client_cert or settings.client_key:
            raise SystemExit("guard: GUARD_CLIENT_CERT and GUARD_CLIENT_KEY need GUARD_SERVER_CA (TLS) too")
        return None
    try:
        return ClientTls(settings.server_ca.read_bytes(),
                         settings.client_cert.read_bytes() if settings.client_cert else None,
                         settings.client_key.read_bytes() if settings.client_key else None)
    except OSError as exc:
        raise SystemExit(f"guard: cannot read {exc.filename}: {exc.strerror}") from None


def _client_call(args: argparse.Namespace) -> int:
    import grpc

    from guard.transport.client import Client

    try:
        settings = Settings.from_env(server=args.server)
    except ValueError as exc:
        sys.stderr.write(f"guard: {exc}\n")
        return 2
    client = Client(settings.server, api_key_for(settings), tls=_client_tls(settings))
    try:
        if args.command == "keys":
            if args.keys_command == "create":
                key, secret = client.create_key(args.tenant, args.roles, args.name)
                _print(key)
                sys.stdout.write(secret + "\n")
            elif args.keys_command == "list":
                _print(client.list_keys(args.tenant))
            else:
                _print(client.revoke_key(args.tenant, args.key_id))
        elif args.command == "policy":
            if args.policy_command == "apply":
                try:
                    text = args.file.read_text(encoding="utf-8")
                except OSError as exc:
                    raise SystemExit(f"guard: cannot read {args.file}: {exc.strerror}") from None
                _print(_policy_summary(client.apply_policy(args.tenant, text, args.actor)))
            else:
                shown = client.policy(args.tenant)
                sys.stdout.write(f"# tenant {shown.tenant}: " + (
                    f"its own policy, version {shown.version}, applied by {shown.applied_by} at "
                    f"{shown.applied_at.ToDatetime(UTC).isoformat()}" if shown.source == "tenant" else
                    "the serving process's default policy") + "\n")
                sys.stdout.write(shown.policy_yaml if shown.policy_yaml.endswith("\n") else shown.policy_yaml + "\n")
        elif args.command == "health":
            experience = client.experience(args.window)
            ranked = client.ranked_health(args.strategies, args.window)
            if args.json:
                _print({"experience": experience, "ranked": ranked})
            else:
                sys.stdout.write(health_tables(experience, ranked, args.strategies))
        elif args.command == "user":
            if args.user_command == "export":
                _print(client.export_user(args.user_id))
            else:
                _print(client.erase_user(args.user_id, args.actor, args.reason))
        elif args.command == "check":
            send_at = _when(args.send_at, "--send-at") if args.send_at else None
            answer = client.check(args.user_id, args.channel, args.category, campaign_id=args.campaign,
                                  touch_id=args.touch_id, touch_class=args.touch_class,
                                  dry_run=args.dry_run or not args.touch_id, send_at=send_at, timing=args.timing)
            if args.json:
                _print(answer)
            else:
                sys.stdout.write(check_text(answer, datetime.now(UTC)))
        elif args.command == "state":
            _print(client.user_state(args.user_id))
        elif args.command == "engagement":
            _print(client.engagement(args.touch_id, args.user_id, args.event, provider=args.provider,
                                     channel=args.channel, detail=args.detail,
                                     occurred_at=_when(args.at, "--at") if args.at else None))
        elif args.command == "reply":
            import secrets

            _print(client.reply(args.user_id, args.text, channel=args.channel,
                                reply_id=args.reply_id or f"cli-{secrets.token_hex(8)}", campaign_id=args.campaign,
                                in_reply_to=args.in_reply_to))
        elif args.command == "tasks":
            if args.tasks_command == "watch":
                _watch(client, args.consumer)
            elif args.tasks_command == "list":
                _print(client.list_tasks(args.status or "", args.page_size, args.page_token))
            elif args.tasks_command == "claim":
                _print(client.claim(args.task_id, args.agent))
            else:
                _print(client.resolve(args.task_id, args.agent, args.outcome, args.note, args.lift_hold))
        elif args.command == "links":
            _print(client.rotate_link_secret(args.tenant, args.retire_previous))
        elif args.command == "hooks" and args.hooks_command == "set":
            name, sep, value = args.secret.partition("=")
            if not sep or not name or not value:
                raise SystemExit("guard hooks set: NAME=VALUE is expected (for example auth_token=...)")
            _print(client.set_hook_secret(args.provider, name, value, args.tenant))
        elif args.command == "hooks":
            _print(client.hook_receivers(args.tenant))
        elif args.command == "webhooks":
            _print(client.webhooks(args.webhooks_command, args.tenant, url=getattr(args, "url", ""),
                                   events=getattr(args, "events", None) or [],
                                   endpoint_id=getattr(args, "endpoint_id", ""), fmt=getattr(args, "format", ""),
                                   language=getattr(args, "language", ""),
                                   robot_secret=getattr(args, "robot_secret", "")))
        elif args.command == "contacts" and args.contacts_command == "import":
            by_user = _contact_rows(args.file)
            kept = sum(int(client.set_contacts(user, addresses).get("kept", 0)) for user, addresses in by_user.items())
            _print({"users": len(by_user), "kept": kept})
        elif args.command == "contacts":
            _print(client.set_contacts(args.user_id, args.addresses))
        elif args.prefs_command == "get":
            _print(client.get_preferences(args.user_id))
        elif args.prefs_command == "history":
            events = client.consent_history(args.user_id)
            if args.json:
                _print(events)
            else:
                sys.stdout.write("".join(_history_line(e) for e in events) or "no consent events\n")
        elif args.prefs_command == "link":
            _print(client.preference_link(args.user_id, _seconds(args.ttl, "--ttl") if args.ttl else 0, args.locale,
                                          args.topic, args.campaign))
        else:
            quiet = None
            if args.quiet_hours:
                parts = args.quiet_hours.split(",")
                if len(parts) != 3:
                    raise SystemExit("guard: --quiet-hours expects TZ,HH:MM,HH:MM")
                quiet = (parts[0], parts[1], parts[2])
            pause = None
            if args.pause_until:
                pause = datetime.fromtimestamp(0, UTC) if args.pause_until == "none" else _when(args.pause_until, "--pause-until")
            unsub = True if args.unsubscribe_all else (False if args.resubscribe else None)
            channels, scopes = _channel_pairs(args.channel)
            _print(client.update_preferences(
                args.user_id, channels=channels, channel_scopes=scopes,
                categories=_bool_pairs(args.category, "--category"), quiet_hours=quiet,
                clear_quiet_hours=args.clear_quiet_hours, paused_until=pause, max_per_week=args.max_per_week,
                unsubscribed_all=unsub, source=args.source, actor=args.actor, expected_version=args.expected_version))
    except KeyboardInterrupt:
        return 130
    except grpc.RpcError as exc:
        sys.stderr.write(f"guard: {exc.code().name}: {exc.details()}\n")
        return 2 if exc.code() == grpc.StatusCode.INVALID_ARGUMENT else 1
    finally:
        client.close()
    return 0


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                   .rstrip() + "\n" for r in rows)


def _index(health: dict[str, Any]) -> str:
    """The fatigue index as people read it: none below the policy's minimum of touches."""
    return "too few touches" if health.get("too_few_touches") else str(health["fatigue_index"])


def health_tables(experience: dict[str, Any], ranked: list[dict[str, Any]], strategies: bool) -> str:
    """``guard health``: the tenant's experience health, then each campaign (or strategy), most fatigued first."""
    def pct(x: Any) -> str:
        return f"{100 * float(x or 0):.2f}%"

    f, r = experience["figures"], experience["rates"]
    out = [f"Experience health, last {experience['window']}\n", _table([
        ["touches", "replies", "negative replies", "opt-outs", "spam complaints", "ignored / judged", "fatigue"],
        [str(f["touches"]), str(f["replies"]), f"{f['negative_replies']} ({pct(r['negative_reply_rate'])})",
         f"{int(f['opt_outs']) + int(f['list_unsubscribes'])} ({pct(r['opt_out_rate'])})",
         f"{f['spam_complaints']} ({pct(r['complaint_rate'])})", f"{f['ignored']} / {f['judged']} "
         f"({pct(r['ignore_rate'])})", _index(experience)]]), "\n", _table([
        ["tasks opened", "resolved", "within SLA", "recovered"],
        [str(f["tasks_opened"]), str(f["tasks_resolved"]), pct(experience["resolved_in_sla_share"]),
         pct(experience["recovered_share"])]])]
    kind = "strategy" if strategies else "campaign"
    rows = [[kind, "touches", "neg. replies", "opt-outs", "complaints", "ignored", "fatigue", "trend"]]
    for item in ranked:
        g, q = item["figures"], item["rates"]
        rows.append([item["strategy_id" if strategies else "campaign_id"], str(g["touches"]),
                     f"{g['negative_replies']} ({pct(q['negative_reply_rate'])})",
                     f"{int(g['opt_outs']) + int(g['list_unsubscribes'])} ({pct(q['opt_out_rate'])})",
                     f"{g['spam_complaints']} ({pct(q['complaint_rate'])})", f"{g['ignored']}/{g['judged']}",
                     _index(item), f"{float(item['trend']):+.1f}"])
    plural = "Strategies" if strategies else "Campaigns"
    out += ["\n", f"{plural} by fatigue index (surest first), last {experience['window']}\n",
            _table(rows) if len(rows) > 1 else f"(no {kind} has figures in the window)\n"]
    return "".join(out)


def _policy_summary(answer: dict[str, Any]) -> dict[str, Any]:
    """What ``policy apply`` answers, without echoing the file back."""
    return {k: v for k, v in answer.items() if k != "policy_yaml"}


def _log_hash_key(settings: Settings) -> bytes:
    """The key of the logs' user-id hash, kept beside the data (0600) so one user hashes alike across restarts."""
    import secrets

    from guard.access.admin_key import write_private

    path = settings.data_dir / "log-hash.key"
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        key = secrets.token_bytes(32)
        write_private(path, key.hex() + "\n")
        return key


def _check_redis(settings: Settings) -> None:
    """GUARD_REDIS_URL and the TLS settings read, and the deployment reached once: a mistake is a ValueError
    naming the setting. An unreachable Redis is not a mistake (guard serves through its fail modes)."""
    from guard.store.connection import probe

    where = settings.redis_target()
    trouble = asyncio.run(probe(where, durability=settings.redis_durability))
    if trouble:
        sys.stderr.write(f"guard: {where.describe()} does not answer yet ({trouble}); serving through the fail modes\n")


def _store(args: argparse.Namespace) -> int:
    """``guard store status|adopt``: straight to Redis, since a store that lost its keys answers no key."""
    from guard.access.admin_key import bootstrap_admin_key
    from guard.domain import clock
    from guard.errors import StoreUnavailable
    from guard.store import amnesia, target
    from guard.store.control import ControlStore
    from guard.store.embedded import running_url
    from guard.store.redis_store import RedisStore

    try:
        settings = Settings.from_env(data_dir=args.data_dir, redis_url=args.redis_url)
        url = settings.redis_url or running_url(settings.data_dir / "redis")
        if not url:
            raise ValueError(f"GUARD_REDIS_URL is not set and no guard serve runs an embedded Redis in "
                             f"{settings.data_dir} (--data-dir / GUARD_DATA_DIR)")
        where = settings.redis_target() if settings.redis_url else target.parse(url)  # the embedded one: plaintext
    except ValueError as exc:
        sys.stderr.write(f"guard store: {exc}\n")
        return 2

    logs.configure(settings.log_level, None if settings.log_format == "auto" else settings.log_format == "json")

    async def run() -> dict[str, Any]:
        store = RedisStore.to(where, timeout_s=5)
        watch = amnesia.StoreWatch(store, settings.data_dir, clock.system_clock)
        try:
            if args.store_command == "status":
                return await amnesia.status(watch)
            identity = await amnesia.adopt(watch, args.actor, args.reason)
            key = await bootstrap_admin_key(ControlStore(store.conn), settings.data_dir)
            return {"adopted": identity.__dict__, "admin_key_restored": bool(key)}
        finally:
            await store.close()

    try:
        _print(asyncio.run(run()))
    except StoreUnavailable as exc:
        sys.stderr.write(f"guard store: {where.describe()} does not answer: {exc}\n")
        return 1
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        if args.command == "serve":
            settings = Settings.from_env(listen=args.listen, data_dir=args.data_dir, policy=args.policy,
                                         redis_url=args.redis_url, metrics_listen=args.metrics_listen,
                                         workers=args.workers, http_listen=args.http_listen, public_url=args.public_url)
        else:
            settings = Settings.from_env()
        if settings.workers < 1:
            raise ValueError(f"--workers / GUARD_WORKERS: 1 or more is expected, got {settings.workers}")
        if args.command == "serve" and settings.redis_url:
            _check_redis(settings)  # within seconds, before the model (or anything heavy) is loaded
    except ValueError as exc:
        sys.stderr.write(f"guard: {exc}\n")
        return 2
    hash_key = _log_hash_key(settings) if settings.log_user_ids == "hash" else None
    logs.configure(settings.log_level, None if settings.log_format == "auto" else settings.log_format == "json", hash_key)
    from guard import app, policy
    from guard.sentiment.model import ModelError
    from guard.store.embedded import EmbeddedRedisError

    role = {"serve": app.serve, "_scorer": app.serve_scoring, "_worker": app.serve_worker}[args.command]
    try:
        with asyncio.Runner(loop_factory=app.loop_factory(settings.event_loop)) as runner:
            runner.run(role(settings))
    except (policy.PolicyError, EmbeddedRedisError, ModelError, ValueError, OSError, RuntimeError) as exc:
        sys.stderr.write(f"guard {args.command.strip('_')}: {exc}\n")
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("serve", "_worker", "_scorer"):
        return _serve(args)
    if args.command == "policy" and args.policy_command == "check":
        from guard import policy

        try:
            loaded = policy.load(args.file)
        except policy.PolicyError as exc:
            sys.stderr.write(f"{args.file}: {exc}\n")
            return 1
        sys.stdout.write(f"{args.file}: ok ({len(loaded.rules)} cap rules, {len(loaded.channels)} channels, "
                         f"{len(loaded.categories)} categories)\n")
        return 0
    if args.command == "store":
        return _store(args)
    if args.command == "train-sentiment":
        from guard.training.cli import run_from_args

        return run_from_args(args)
    return _client_call(args)


if __name__ == "__main__":
    raise SystemExit(main())
