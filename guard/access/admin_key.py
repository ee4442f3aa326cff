"""The first start's admin key: made once, written to ``admin.key`` in the data directory, never overwritten.

Kept apart from the wiring (``app``) so the operator's commands (``guard store adopt``) use it without
loading the service.
"""

from __future__ import annotations

import os
from pathlib import Path

from guard import logs
from guard.access.keys import DEFAULT_TENANT, Role, key_of, new_key
from guard.domain import clock
from guard.store.control import ControlStore

log = logs.get("guard.app")

ADMIN_KEY_FILE = "admin.key"


async def bootstrap_admin_key(control: ControlStore, data_dir: Path) -> Path | None:
    """The first start's key: while no key exists at all, make an admin (and operator) key of the default
    tenant and write it to ``admin.key`` (mode 0600) in the data directory. Later starts leave keys alone.

    ``admin.key`` is never overwritten: a store that has no key but a data directory that has one (an
    adopted empty store, an upgrade) gets that key back instead, so the operator's CLI keeps working."""
    path = data_dir / ADMIN_KEY_FILE
    kept = read_admin_key(path)
    key = key_of(kept) if kept else new_key()
    roles = (Role.ADMIN.value, Role.OPERATOR.value)
    if not await control.create_key(key.key_id, key.digest, DEFAULT_TENANT, roles, "bootstrap admin",
                                    clock.system_clock(), first=True):
        return None
    if kept:
        log.warning("admin_key_restored", path=str(path), key_id=key.key_id,
                    note="the store had no key: the admin key in the data directory is valid again")
        return path
    write_private(path, key.secret + "\n")
    log.info("admin_key_created", path=str(path), key_id=key.key_id, tenant=DEFAULT_TENANT, roles=list(roles),
             note="no API key existed: this admin key of the default tenant is the only copy; the CLI reads it")
    return path


def read_admin_key(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return ""


def write_private(path: Path, text: str) -> None:
    """A file only its owner can read (0600), whatever was there before."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # an older file keeps its mode through O_TRUNC: set it anyway
