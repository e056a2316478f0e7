"""The processes of a run started in its own session (start_new_session=True): a parent,
its forkserver and the workers, read from /proc (proc(5): stat fields 4 ppid, 6 session)."""

from __future__ import annotations

import os
from pathlib import Path


def _stat_fields(pid: int | str) -> list[str]:
    """The fields after the command name (which may hold spaces and parentheses)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def session_members(sid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = _stat_fields(entry)
            except OSError:
                continue
            if int(fields[3]) == sid:  # field 6, session
                out.append(int(entry))
    return out


def ppid(pid: int) -> int:
    try:
        return int(_stat_fields(pid)[1])  # field 4
    except OSError:
        return -1
