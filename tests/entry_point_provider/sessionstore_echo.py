"""A third-party provider for the tests: the memory store under the ``echo://`` scheme,
known to sessionstore only through this distribution's entry point."""

from sessionstore import MemorySessionStore

__all__ = ["EchoSessionStore"]


class EchoSessionStore(MemorySessionStore):
    """A memory store that says it is ``echo://``."""

    provider = "echo"

    @property
    def location(self) -> str:
        """``echo://``."""
        return "echo://"
