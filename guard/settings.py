"""One settings object, read from ``GUARD_*`` environment variables and overridden by flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from guard.store import target
from guard.store.target import Target, TlsFiles


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "guard"


@dataclass(frozen=True)
class Settings:
    listen: str = "127.0.0.1:50051"  # GUARD_LISTEN: host:port of the gRPC server
    data_dir: Path = field(default_factory=_default_data_dir)  # GUARD_DATA_DIR: the embedded Redis keeps its data here
    policy: Path | None = None  # GUARD_POLICY: policy file (YAML); default: the shipped policy
    redis_url: str = ""  # GUARD_REDIS_URL: an existing Redis instead of the embedded one
    redis_timeout: float = 1.0  # GUARD_REDIS_TIMEOUT: seconds per Redis call before the fail mode answers
    redis_ca: Path | None = None  # GUARD_REDIS_CA: CA bundle that signed Redis's certificate (rediss://); default: system
    redis_client_cert: Path | None = None  # GUARD_REDIS_CLIENT_CERT: guard's certificate, when Redis asks for one
    redis_client_key: Path | None = None  # GUARD_REDIS_CLIENT_KEY: its private key
    redis_tls_server_name: str = ""  # GUARD_REDIS_TLS_SERVER_NAME: the name on Redis's certificate, if not the host
    redis_sentinel_username: str = ""  # GUARD_REDIS_SENTINEL_USERNAME: the sentinels' own ACL user (redis+sentinel://)
    redis_sentinel_password: str = ""  # GUARD_REDIS_SENTINEL_PASSWORD: the sentinels' own password
    redis_durability: str = "local"  # GUARD_REDIS_DURABILITY: local, replica (WAIT 1) or aof (WAITAOF 1 0, Redis 7.2+)
    metrics_listen: str = ""  # GUARD_METRICS_LISTEN: host:port for Prometheus; empty = off
    http_listen: str = "127.0.0.1:8080"  # GUARD_HTTP_LISTEN: host:port of the pages (preference center, desk); empty = off
    public_url: str = ""  # GUARD_PUBLIC_URL: the pages' address as people reach it, for links; default http://<http_listen>
    desk_session_hours: float = 8.0  # GUARD_DESK_SESSION_HOURS: how long a desk sign-in lasts
    desk_streams_per_session: int = 3  # GUARD_DESK_STREAMS_PER_SESSION: live queues one desk sign-in may hold open
    desk_streams_per_key: int = 10  # GUARD_DESK_STREAMS_PER_KEY: live queues all sign-ins of one key may hold open
    http_header_timeout_seconds: float = 10.0  # GUARD_HTTP_HEADER_TIMEOUT_SECONDS: a request's line and headers
    http_body_timeout_seconds: float = 30.0  # GUARD_HTTP_BODY_TIMEOUT_SECONDS: a request's whole body, from its start
    max_webhook_bytes: int = 2 << 20  # GUARD_MAX_WEBHOOK_BYTES: the largest body a provider's webhook may post
    sns_hosts: str = ""  # GUARD_SNS_HOSTS: host:port list SNS certificates may come from besides SNS's own (tests)
    webhooks_allow_private: bool = False  # GUARD_WEBHOOKS_ALLOW_PRIVATE: webhook endpoints on private addresses, http
    webhook_seconds: float = 1.0  # GUARD_WEBHOOK_SECONDS: how often the outbox is delivered to webhook endpoints
    sns_ca: Path | None = None  # GUARD_SNS_CA: CA bundle for fetching SNS certificates; default: the system's
    drain_seconds: float = 10.0  # GUARD_DRAIN_SECONDS: grace for calls in flight after SIGTERM
    log_level: str = "info"  # GUARD_LOG_LEVEL
    log_format: str = "auto"  # GUARD_LOG_FORMAT: auto (JSON unless a terminal), json or console
    server: str = "127.0.0.1:50051"  # GUARD_SERVER: where the client commands find the server
    sentiment_model: Path | None = None  # GUARD_SENTIMENT_MODEL: checkpoint folder; default: the bundled model
    sentiment_threads: int = 0  # GUARD_SENTIMENT_THREADS: torch CPU threads; 0 = torch's default
    sentiment_quantize: bool = False  # GUARD_SENTIMENT_QUANTIZE: int8 dynamic quantisation (scores then vary with the batch)
    sentiment_precision: str = "auto"  # GUARD_SENTIMENT_PRECISION: auto (bf16 where the CPU has it), fp32 or bf16
    sentiment_max_batch: int = 16  # GUARD_SENTIMENT_MAX_BATCH: replies per model call (16: the best p99 under load)
    sentiment_max_wait_ms: float = 5.0  # GUARD_SENTIMENT_MAX_WAIT_MS: how long a batch waits for company
    sentiment_max_in_flight: int = 512  # GUARD_SENTIMENT_MAX_IN_FLIGHT: past it, scoring fails fast
    sweep_seconds: float = 15.0  # GUARD_SWEEP_SECONDS: how often unscored replies are retried
    brake_seconds: float = 1.0  # GUARD_BRAKE_SECONDS: how often the fatigue brake rules are evaluated
    redis_appendfsync: str = "everysec"  # GUARD_REDIS_APPENDFSYNC: the embedded Redis's fsync (everysec, always, no)
    max_message_bytes: int = 4 << 20  # GUARD_MAX_MESSAGE_BYTES: largest gRPC message taken or sent
    event_loop: str = "uvloop"  # GUARD_EVENT_LOOP: uvloop or asyncio
    workers: int = 1  # GUARD_WORKERS: serving processes on one port; more than 1 adds a scoring process
    scorer_socket: Path | None = None  # GUARD_SCORER_SOCKET: set by the supervisor for its workers
    worker_index: int = 0  # GUARD_WORKER_INDEX: set by the supervisor; worker 0 runs the sweeper
    # Trust: keys, TLS, privacy.
    auth_cache_seconds: float = 30.0  # GUARD_AUTH_CACHE_SECONDS: how long a checked key's grant is trusted unasked
    auth_failures_per_minute: int = 60  # GUARD_AUTH_FAILURES_PER_MINUTE: failed authentications one address may make
    control_poll_seconds: float = 1.0  # GUARD_CONTROL_POLL_SECONDS: how often revoked keys and new policies are looked for
    tls_cert: Path | None = None  # GUARD_TLS_CERT: the server's certificate chain (PEM); with GUARD_TLS_KEY, TLS on
    tls_key: Path | None = None  # GUARD_TLS_KEY: the server's private key (PEM)
    tls_client_ca: Path | None = None  # GUARD_TLS_CLIENT_CA: CA bundle; set, every client must show a certificate it signed
    reflection: bool = True  # GUARD_REFLECTION: gRPC server reflection (for grpcurl-style clients), keyless
    log_user_ids: str = "omit"  # GUARD_LOG_USER_IDS: omit (never logged) or hash (a keyed hash, to follow one user)
    # The client commands (guard check, prefs, tasks, keys, policy ...).
    api_key: str = ""  # GUARD_API_KEY: the key the client commands send; default: admin.key of a local embedded server
    server_ca: Path | None = None  # GUARD_SERVER_CA: CA bundle the client commands trust; set, they speak TLS
    client_cert: Path | None = None  # GUARD_CLIENT_CERT: the client commands' certificate, for mutual TLS
    client_key: Path | None = None  # GUARD_CLIENT_KEY: its private key

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"GUARD_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _convert(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def redis_target(self, url: str | None = None) -> Target:
        """The Redis deployment these settings name (``url`` instead of GUARD_REDIS_URL: the embedded Redis)."""
        files = TlsFiles(self.redis_ca, self.redis_client_cert, self.redis_client_key, self.redis_tls_server_name)
        return target.parse(url or self.redis_url, files, sentinel_username=self.redis_sentinel_username,
                            sentinel_password=self.redis_sentinel_password)

    def to_env(self) -> dict[str, str]:
        """These settings as the ``GUARD_*`` variables that ``from_env`` reads back (for child processes)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value != "":
                out[f"GUARD_{f.name.upper()}"] = str(value)
        return out


_PATHS = ("data_dir", "policy", "sns_ca", "sentiment_model", "scorer_socket", "tls_cert", "tls_key", "tls_client_ca", "server_ca",
          "client_cert", "client_key", "redis_ca", "redis_client_cert", "redis_client_key")


def _convert(name: str, raw: str) -> object:
    if name in _PATHS:
        return Path(raw)
    if name in ("sentiment_quantize", "reflection", "webhooks_allow_private"):
        if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError(f"GUARD_{name.upper()}: true or false is expected, got {raw!r}")
        return raw.lower() in ("1", "true", "yes")
    if name in ("sentiment_threads", "sentiment_max_batch", "sentiment_max_in_flight", "max_message_bytes", "workers",
                "worker_index", "auth_failures_per_minute", "desk_streams_per_session", "desk_streams_per_key",
                "max_webhook_bytes"):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"GUARD_{name.upper()}: a whole number is expected, got {raw!r}") from None
    if name == "log_user_ids" and raw not in ("omit", "hash"):
        raise ValueError(f"GUARD_LOG_USER_IDS: omit or hash is expected, got {raw[:32]!r}")
    if name in ("redis_timeout", "drain_seconds", "sentiment_max_wait_ms", "sweep_seconds", "auth_cache_seconds",
                "control_poll_seconds", "brake_seconds", "webhook_seconds", "desk_session_hours", "http_header_timeout_seconds",
                "http_body_timeout_seconds"):
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"GUARD_{name.upper()}: a number is expected, got {raw!r}") from None
    return raw
