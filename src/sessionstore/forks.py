"""What a forked child renews: the one place of fork handling.

Only the forking thread lives on in a child of ``os.fork`` (multiprocessing's ``fork``
context, gunicorn's and uWSGI's prefork workers). Whatever the parent had is copied
without its threads: a thread pool keeps its queue but no worker, an event loop thread
is gone, a lock another thread held stays held, and a client's open connections are
the parent's too (a request on one would read the other process's responses).

Every object of this library that owns such things registers itself with
:func:`renew_in_child`; an ``os.register_at_fork`` hook then calls its ``_forked()``
in the child, before any other code runs there, after the module hooks
(:func:`at_fork_in_child`) have reset module-level state. A renewed object opens
fresh clients, pools and threads on first use (docs/DESIGN.md, "Event loops, the sync
API and deadlines").
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable
from typing import Protocol

__all__ = ["at_fork_in_child", "renew_in_child"]

_log = logging.getLogger("sessionstore")


class _Renewable(Protocol):
    def _forked(self) -> None: ...


_owners: weakref.WeakSet[_Renewable] = weakref.WeakSet()
_hooks: list[Callable[[], None]] = []


def renew_in_child(owner: _Renewable) -> None:
    """Call ``owner._forked()`` in every child forked while ``owner`` is alive."""
    _owners.add(owner)


def at_fork_in_child(hook: Callable[[], None]) -> Callable[[], None]:
    """Run ``hook`` (a module's reset) in a forked child, before the owners renew."""
    _hooks.append(hook)
    return hook


def _after_fork_in_child() -> None:
    # Never raise here: Python would print the error and go on in a half-renewed child.
    for hook in _hooks:
        try:
            hook()
        except Exception as exc:  # pragma: no cover - the hooks only reset fields
            _log.debug("sessionstore: fork hook %r failed: %r", hook, exc)
    for owner in list(_owners):
        try:
            owner._forked()
        except Exception as exc:  # pragma: no cover - depends on the SDK
            _log.debug("sessionstore: renewing %r after fork: %r", owner, exc)


os.register_at_fork(after_in_child=_after_fork_in_child)
