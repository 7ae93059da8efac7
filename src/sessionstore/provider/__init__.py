"""The provider author's API: everything a new store needs, and nothing else.

A provider module subclasses :class:`sessionstore.base.ObjectSessionStore` (or
:class:`sessionstore.clients.ClientStore` for an SDK client) and implements the
primitives of :class:`Primitives` with the values of :mod:`.objects`, following the
rules stated on :class:`Primitives`; it declares what it offers in one
:class:`Capabilities`, and names the :mod:`.faults` an SDK exception stands for in
``_classify``. docs/DESIGN.md, "Adding a provider", is the checklist and "Provider
rules" the rules; the contract suite checks each rule with a test named after it.
"""

from sessionstore.provider.faults import (
    AccessDenied,
    Failed,
    Fault,
    NotFound,
    PreconditionFailed,
    Transient,
    http_fault,
    redact,
)
from sessionstore.provider.objects import (
    ABSENT,
    META_ENCODING,
    META_TICK,
    META_WRITE_ID,
    SYNC_CALL,
    UNCONDITIONAL,
    Capabilities,
    Condition,
    ListedObject,
    ObjectInfo,
    Page,
    StoredObject,
    StoreOptions,
    sync_call,
)
from sessionstore.provider.primitives import Primitives

__all__ = [
    "ABSENT",
    "META_ENCODING",
    "META_TICK",
    "META_WRITE_ID",
    "SYNC_CALL",
    "UNCONDITIONAL",
    "AccessDenied",
    "Capabilities",
    "Condition",
    "Failed",
    "Fault",
    "ListedObject",
    "NotFound",
    "ObjectInfo",
    "Page",
    "PreconditionFailed",
    "Primitives",
    "StoreOptions",
    "StoredObject",
    "Transient",
    "http_fault",
    "redact",
    "sync_call",
]
