"""Redis Cluster for the lean connection: each batch split by hash slot, sent to each master at once.

Every key of one user carries the same hash tag, so every command and script guard sends
touches one slot; this module only has to find that slot's master. The slot map comes from
``CLUSTER SLOTS`` and is read again whenever a node answers MOVED (or cannot be reached); an
ASK answer is followed once with ASKING. Commands without a key (PING) go to any master;
SCRIPT LOAD goes to every master.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from guard.store.resp import RespConnection, RespConnectionError, RespError, RespRefused
from guard.store.target import Node

SLOTS = 16384


def _crc16_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_TABLE = _crc16_table()


def key_slot(key: str) -> int:
    """Redis Cluster's slot of a key: CRC16 (XMODEM) of its hash tag (the part in braces), modulo 16384."""
    data = key.encode("utf-8")
    start = data.find(b"{")
    if start >= 0:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1 : end]
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc % SLOTS


_KEYLESS = {"PING", "ECHO", "SCRIPT", "INFO", "TIME"}


def first_key(args: Sequence[Any]) -> str | None:
    name = str(args[0]).upper()
    if name in _KEYLESS or len(args) < 2:
        return None
    if name in ("EVALSHA", "EVAL", "EVALSHA_RO", "EVAL_RO"):
        return str(args[3]) if int(args[2]) > 0 else None
    return str(args[1])


class ClusterConnection:
    """The same ``send`` as ``RespConnection``, over every master of a cluster."""

    def __init__(self, seeds: Sequence[Node], *, timeout_s: float) -> None:
        self.seeds = list(seeds)
        self.timeout_s = timeout_s
        self._nodes: dict[tuple[str, int], RespConnection] = {}
        self._slots: list[tuple[str, int] | None] = [None] * SLOTS
        self._refresh_lock: asyncio.Lock | None = None

    def _node(self, where: tuple[str, int]) -> RespConnection:
        if where not in self._nodes:
            # Every node the map names gets the seeds' credentials and TLS (an ACL user on every node).
            self._nodes[where] = RespConnection(self.seeds[0].at(*where), timeout_s=self.timeout_s)
        return self._nodes[where]

    async def refresh(self) -> None:
        """Read the slot map from the first node that answers."""
        if self._refresh_lock is None:
            self._refresh_lock = asyncio.Lock()
        async with self._refresh_lock:
            known = list(self._nodes) + [(a.host, a.port) for a in self.seeds]
            last: Exception | None = None
            for where in dict.fromkeys(known):
                try:
                    (reply,) = await self._node(where).send([("CLUSTER", "SLOTS")])
                except RespRefused:
                    raise  # a wrong password or certificate is wrong on every node: say so, not "unreachable"
                except RespConnectionError as exc:
                    last = exc
                    continue
                if isinstance(reply, Exception):
                    last = reply
                    continue
                slots: list[tuple[str, int] | None] = [None] * SLOTS
                for start, end, master, *_ in reply:
                    host = str(master[0]) or where[0]
                    for slot in range(int(start), int(end) + 1):
                        slots[slot] = (host, int(master[1]))
                self._slots = slots
                return
            raise RespConnectionError(f"no cluster node answered CLUSTER SLOTS: {last}")

    def _masters(self) -> list[tuple[str, int]]:
        return sorted({w for w in self._slots if w is not None})

    async def each_master(self, commands: Sequence[Sequence[Any]]) -> dict[str, list[Any]]:
        """The same commands on every master (host:port -> replies): server-wide questions such as INFO."""
        if all(w is None for w in self._slots):
            await self.refresh()
        masters = self._masters()
        answers = await asyncio.gather(*(self._node(w).send(commands) for w in masters))
        return {f"{w[0]}:{w[1]}": a for w, a in zip(masters, answers, strict=True)}

    async def shard_tags(self, prefix: str) -> dict[str, str]:
        """A hash tag per master (``host:port`` -> tag) whose slot that master serves now: a key under it lives on
        that shard, so a marker written there vanishes with the shard's data."""
        if all(w is None for w in self._slots):
            await self.refresh()
        tags: dict[str, str] = {}
        wanted = set(self._masters())
        i = 0
        while wanted - {w for w in wanted if f"{w[0]}:{w[1]}" in tags}:
            tag = f"{prefix}{i}"
            where = self._slots[key_slot("{" + tag + "}")]
            if where is not None and f"{where[0]}:{where[1]}" not in tags:
                tags[f"{where[0]}:{where[1]}"] = tag
            i += 1
        return tags

    async def send(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        if all(w is None for w in self._slots):
            await self.refresh()
        replies: list[Any] = [None] * len(commands)
        todo = list(range(len(commands)))
        for _ in range(3):
            by_node: dict[tuple[str, int], list[int]] = {}
            broadcast: list[int] = []
            for i in todo:
                key = first_key(commands[i])
                if str(commands[i][0]).upper() == "SCRIPT":
                    broadcast.append(i)
                    continue
                masters = self._masters()
                where = self._slots[key_slot(key)] if key is not None else (masters[0] if masters else None)
                if where is None:
                    raise RespConnectionError("the cluster serves no node for this key's slot")
                by_node.setdefault(where, []).append(i)
            jobs = [self._send_to(where, [commands[i] for i in idx], idx, replies) for where, idx in by_node.items()]
            jobs += [self._broadcast(commands[i], i, replies) for i in broadcast]
            await asyncio.gather(*jobs)
            moved = [i for i in todo if isinstance(replies[i], RespError) and str(replies[i]).startswith(("MOVED", "ASK"))]
            unreachable = [i for i in todo if isinstance(replies[i], RespConnectionError)]
            if not moved and not unreachable:
                return replies
            asks = [i for i in moved if str(replies[i]).startswith("ASK")]
            for i in asks:  # the slot is migrating: ask the node named, once
                _, _, target = str(replies[i]).split(" ")
                host, _, port = target.rpartition(":")
                answer = await self._node((host, int(port))).send([("ASKING",), commands[i]])
                replies[i] = answer[1]
            todo = [i for i in moved if i not in asks] + unreachable
            if not todo:
                return replies
            await self.refresh()
        for i in todo:
            if isinstance(replies[i], RespConnectionError):
                raise replies[i]
        return replies

    async def send_for_key(self, key: str, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Keyless commands (WAIT) for the master of ``key``'s slot, on the connection its writes went through."""
        if all(w is None for w in self._slots):
            await self.refresh()
        where = self._slots[key_slot(key)]
        if where is None:
            raise RespConnectionError("the cluster serves no node for this key's slot")
        return await self._node(where).send(commands)

    async def _send_to(self, where: tuple[str, int], batch: list[Sequence[Any]], idx: list[int],
                       replies: list[Any]) -> None:
        try:
            answers = await self._node(where).send(batch)
        except RespConnectionError as exc:
            answers = [exc] * len(batch)
        for i, answer in zip(idx, answers, strict=True):
            replies[i] = answer

    async def _broadcast(self, command: Sequence[Any], i: int, replies: list[Any]) -> None:
        answers = await asyncio.gather(*(self._node(w).send([command]) for w in self._masters()), return_exceptions=True)
        failed = [a for a in answers if isinstance(a, Exception)]
        replies[i] = failed[0] if failed else answers[0][0]  # type: ignore[index]

    async def close(self) -> None:
        await asyncio.gather(*(node.close() for node in self._nodes.values()))
