"""The faults a primitive raises, under the names provider authors use.

When an SDK call fails, the provider's ``_classify`` names one of these types; the call
layer (:mod:`sessionstore.calls`) raises it, chained to the SDK's exception, and maps
what escapes an operation onto the public error tree (docs/DESIGN.md, "Errors"). A
primitive that detects a condition itself (the file and memory stores) raises the fault
directly. Faults are not part of the user-facing error tree: a caller only ever sees one
that no operation interpreted, and then as a :class:`SessionStoreError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sessionstore.errors import SessionStoreError

__all__ = [
    "AccessDenied",
    "Failed",
    "Fault",
    "NotFound",
    "PreconditionFailed",
    "Transient",
    "http_fault",
    "redact",
]


class Fault(SessionStoreError):
    """A primitive failed; the call layer maps what escapes onto the public error tree.

    ``detail`` is a short, secret-free description (code and status) for messages;
    ``attempts`` is set by the retry loop to the number of attempts made. A fault is a
    :class:`SessionStoreError`, so one that no operation interprets (a 412 on a read)
    still reaches the caller inside the public tree, with the operation in its message.
    """

    attempts = 1

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail)
        self.detail = detail or type(self).__name__


class NotFound(Fault):
    """The object (not the bucket) does not exist: ``_get``, ``_head`` and ``_delete``
    of a missing key raise it, and so does a ``_put`` whose version condition meets no
    object (where the service says so with a 404)."""


class PreconditionFailed(Fault):
    """A conditional ``_put`` or ``_delete`` (:class:`~sessionstore.provider.Condition`)
    found another state."""


class Transient(Fault):
    """Throttling, 5xx, a timeout or a broken connection: retried by the call layer."""


class AccessDenied(Fault):
    """401/403, bad credentials, or a missing bucket or container."""


class Failed(Fault):
    """Anything else: fails at once."""


#: What an HTTP status means, the same for every cloud.
_STATUS_FAULTS: Mapping[int, type[Fault]] = {
    401: AccessDenied,
    403: AccessDenied,
    404: NotFound,
    408: Transient,
    412: PreconditionFailed,
    429: Transient,
    500: Transient,
    502: Transient,
    503: Transient,
    504: Transient,
}


def http_fault(
    status: int | None, code: str = "", codes: Mapping[str, type[Fault]] | None = None
) -> type[Fault]:
    """The fault of an HTTP error: the service's error ``code`` first, then its status."""
    if codes and code in codes:
        return codes[code]
    return _STATUS_FAULTS.get(status or 0, Failed)


_SECRET_PATTERNS = re.compile(
    r"(?i)((?:sig|signature|x-amz-signature|x-amz-security-token|accountkey|sharedaccesssignature"
    r"|se|sp|sv|skoid|sktid|skv|access_token|client_secret)=['\"]?)[^&;\s'\"]+"
)


def redact(text: str) -> str:
    """Blank out anything that looks like a signature, key or token in ``text``."""
    return _SECRET_PATTERNS.sub(r"\1***", text)
