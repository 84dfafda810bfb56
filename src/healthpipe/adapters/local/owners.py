"""Lease owners on this machine: is the process named by an owner id still running?

The SQLite ledger and the outbox bus both take over a lease at once when its owner has exited.
"""

from __future__ import annotations

import os
import socket


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
