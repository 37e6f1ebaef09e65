"""The process's soft limit of open files, raised where a socket per connection needs it."""

from __future__ import annotations

import resource

__all__ = ["allow_open_files"]


def allow_open_files(wanted: int) -> None:
    """Raise the soft limit of open files towards `wanted`, as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
