"""Owners on this machine: which process holds a lease or a work folder, and is it running?

An owner id is `host:pid:nonce`. The SQLite ledger and the outbox bus take over a lease at
once when its owner has exited; a stage's work folder (`dataops/work_folders.py`) is removed
by the next stage that starts once its owner has exited (a SIGKILL, an OOM kill or a power
cut leaves it behind).
"""

from __future__ import annotations

import os
import socket
import uuid


def default_owner() -> str:
    """Identifies this process: `host:pid:nonce` (a local takeover checks the pid)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_is_dead(owner: str) -> bool:
    """True when `owner` (`host:pid:nonce`) names a process on this host that has exited."""
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    return not pid_alive(int(pid_text))
