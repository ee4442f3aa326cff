"""Where guard's Redis is and how to reach it: one Redis, a Cluster or a Sentinel-watched primary, TLS or not.

``GUARD_REDIS_URL`` names the deployment:

- ``redis://[user:password@]host:port[/db]`` (``rediss://`` for TLS): one Redis;
- ``redis+cluster://[user:password@]host:port[,host:port...]`` (``rediss+cluster://``): any nodes of a Redis
  Cluster, the rest found from them; the credentials and TLS apply to every node;
- ``redis+sentinel://[user:password@]host:port[,host:port...]/SERVICE[/db]`` (``rediss+sentinel://``): the
  sentinels watching the primary named SERVICE; guard asks them where the primary is and follows it. The
  URL's credentials are the primary's; the sentinels' own are ``GUARD_REDIS_SENTINEL_USERNAME`` /
  ``GUARD_REDIS_SENTINEL_PASSWORD``.

A user name or password holding ``@``, ``:`` or ``/`` is written URL-encoded (``p%40ss``). TLS takes
``GUARD_REDIS_CA`` (the CA bundle that signed the server's certificate; default: the system's),
``GUARD_REDIS_CLIENT_CERT`` / ``GUARD_REDIS_CLIENT_KEY`` (a client certificate, when the server asks for
one) and ``GUARD_REDIS_TLS_SERVER_NAME`` (the name the server's certificate carries, when it is not the
host guard connects to). Every mistake here is a ``ValueError`` naming the setting, raised before
anything starts.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from guard.validate import ascii_digits

KINDS = {"redis": ("single", False), "rediss": ("single", True), "redis+cluster": ("cluster", False),
         "rediss+cluster": ("cluster", True), "redis+sentinel": ("sentinel", False),
         "rediss+sentinel": ("sentinel", True)}
EXPECTED = ("redis://, rediss://, redis+cluster://, rediss+cluster://, redis+sentinel://host:port[,...]/SERVICE "
            "or rediss+sentinel://")


@dataclass(frozen=True)
class TlsFiles:
    """The TLS settings of the Redis connections (paths as given; read once into a context)."""

    ca: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    server_name: str = ""

    def context(self) -> ssl.SSLContext:
        """A client context that verifies the server (against ``ca``, else the system's CAs)."""
        try:
            context = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"GUARD_REDIS_CA: cannot read a CA bundle from {self.ca}: {exc}") from None
        if self.client_cert is not None or self.client_key is not None:
            if self.client_cert is None or self.client_key is None:
                missing = "GUARD_REDIS_CLIENT_CERT" if self.client_cert is None else "GUARD_REDIS_CLIENT_KEY"
                raise ValueError(f"{missing}: a client certificate needs both GUARD_REDIS_CLIENT_CERT and "
                                 "GUARD_REDIS_CLIENT_KEY")
            try:
                context.load_cert_chain(str(self.client_cert), str(self.client_key))
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"GUARD_REDIS_CLIENT_CERT: cannot load {self.client_cert} with its key "
                                 f"{self.client_key}: {exc}") from None
        return context

    @property
    def given(self) -> bool:
        return bool(self.ca or self.client_cert or self.client_key or self.server_name)


@dataclass(frozen=True)
class Node:
    """One Redis to connect to: address, the credentials to AUTH with, the db, and TLS (a context, or None)."""

    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: ssl.SSLContext | None = None
    server_name: str = ""  # the name the certificate is checked against ('' : the host)

    def at(self, host: str, port: int) -> Node:
        """The same credentials and TLS, another address (a cluster node, the primary a sentinel names)."""
        return replace(self, host=host, port=port)

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Target:
    kind: str  # single, cluster or sentinel
    nodes: tuple[Node, ...]  # the Redis (single), the seeds (cluster), the sentinels (sentinel)
    service: str = ""  # sentinel: the primary's name
    primary: Node | None = None  # sentinel: credentials, db and TLS for the primary, its address unknown yet
    tls_files: TlsFiles = TlsFiles()

    @property
    def tls(self) -> bool:
        return self.nodes[0].tls is not None

    def describe(self) -> str:
        """The deployment as logs say it: never a password."""
        hosts = ",".join(n.name for n in self.nodes)
        scheme = {"single": "redis", "cluster": "redis+cluster", "sentinel": "redis+sentinel"}[self.kind]
        return f"{scheme.replace('redis', 'rediss', 1) if self.tls else scheme}://{hosts}" + (
            f"/{self.service}" if self.service else "")


def _port(text: str, where: str) -> int:
    if not ascii_digits(text) or not 0 < int(text) < 65536:
        raise ValueError(f"GUARD_REDIS_URL: {where}: a port between 1 and 65535 is expected, got {text[:16]!r}")
    return int(text)


def _hosts(netloc: str) -> tuple[str | None, str | None, list[tuple[str, int]]]:
    credentials, _, hosts = netloc.rpartition("@")
    username = password = None
    if credentials:  # as redis-py reads them: user:password, :password (the default user), or user alone
        user, colon, secret = credentials.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon and secret else None
    out = []
    for part in hosts.split(","):
        if not part:
            continue
        if part.startswith("["):
            host, _, rest = part[1:].partition("]")
            port = rest.removeprefix(":") or "6379"
        else:
            host, _, port = part.rpartition(":") if ":" in part else (part, "", "6379")
        if not host:
            raise ValueError(f"GUARD_REDIS_URL: {part[:64]!r} names no host")
        out.append((host, _port(port, part[:64])))
    if not out:
        raise ValueError("GUARD_REDIS_URL names no host")
    return username, password, out


def _db(text: str) -> int:
    if not text:
        return 0
    if not ascii_digits(text) or int(text) > 10_000:
        raise ValueError(f"GUARD_REDIS_URL: the database is a number, got {text[:16]!r}")
    return int(text)


def parse(url: str, tls_files: TlsFiles = TlsFiles(), *, sentinel_username: str = "",
          sentinel_password: str = "") -> Target:
    """The deployment ``url`` names, or a ``ValueError`` that names the setting to change."""
    scheme, sep, _ = url.partition("://")
    if not sep or scheme.lower() not in KINDS:
        raise ValueError(f"GUARD_REDIS_URL: {EXPECTED} is expected, got {url.split('@')[-1][:64]!r}")
    kind, tls = KINDS[scheme.lower()]
    if tls_files.given and not tls:
        raise ValueError("GUARD_REDIS_CA / GUARD_REDIS_CLIENT_CERT / GUARD_REDIS_TLS_SERVER_NAME are set, but "
                         f"GUARD_REDIS_URL is {scheme}:// (plaintext): use {scheme.replace('redis', 'rediss', 1)}://")
    parts = urlsplit(url)
    username, password, hosts = _hosts(parts.netloc)
    context = tls_files.context() if tls else None
    path = [p for p in parts.path.split("/") if p]
    service = ""
    if kind == "sentinel":
        if not path:
            raise ValueError("GUARD_REDIS_URL: redis+sentinel://host:port[,host:port...]/SERVICE names no service "
                             "(the primary's name in the sentinels' configuration)")
        service, path = unquote(path[0]), path[1:]
    elif kind == "cluster" and path and path != ["0"]:
        raise ValueError("GUARD_REDIS_URL: a Redis Cluster has only database 0")
    if len(path) > 1:
        raise ValueError(f"GUARD_REDIS_URL: unexpected path {parts.path[:64]!r}")
    db = _db(path[0] if path else "")
    if kind == "single" and len(hosts) > 1:
        raise ValueError("GUARD_REDIS_URL: redis:// names one host; several are redis+cluster:// or redis+sentinel://")
    data = Node("", 0, db, username, password, context, tls_files.server_name)
    if kind == "sentinel":
        sentinels = tuple(Node(h, p, 0, sentinel_username or None, sentinel_password or None, context,
                               tls_files.server_name) for h, p in hosts)
        return Target(kind, sentinels, service, data, tls_files)
    return Target(kind, tuple(data.at(h, p) for h, p in hosts), tls_files=tls_files)
