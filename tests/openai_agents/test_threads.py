"""Sessions from worker threads that each run an event loop of their own (a threaded
server, a sync framework calling ``asyncio.run`` per request): ``from_url`` hands them
one shared store, which serves every loop at once.

Runs on the memory store, the file store and the three emulated clouds.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sessionstore import RetryPolicy
from sessionstore.integrations.openai_agents import ObjectStorageSession

PATIENT = RetryPolicy(attempts=10_000, base_delay=0.01, max_delay=0.5, deadline=600)


@pytest.fixture
def url(backend: str, request: pytest.FixtureRequest) -> str:
    """Where the test's sessions live: ``memory://`` in this process, else ``store_url``."""
    if backend == "memory":
        return "memory://"
    return str(request.getfixturevalue("store_url"))


def test_worker_threads_each_with_a_loop_share_from_url_sessions(url: str) -> None:
    workers, turns = 3, 8
    barrier = threading.Barrier(workers)

    def worker(tag: str) -> Any:
        async def main() -> Any:
            own = ObjectStorageSession.from_url(f"chat-{tag}", url)
            shared = ObjectStorageSession.from_url("shared", url, conflict_retry=PATIENT)
            await asyncio.to_thread(barrier.wait, 120)  # every loop's first call at once
            for n in range(turns):
                item: Any = {"role": "user", "content": f"{tag}-{n}"}
                await asyncio.gather(own.add_items([item]), shared.add_items([item]))
            return [item["content"] for item in await own.get_items()]

        return asyncio.run(main())

    tags = [f"t{i}" for i in range(workers)]
    try:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(worker, tags))
        assert results == [[f"{tag}-{n}" for n in range(turns)] for tag in tags]

        async def shared_items() -> list[str]:
            shared = ObjectStorageSession.from_url("shared", url, conflict_retry=PATIENT)
            return sorted(item["content"] for item in await shared.get_items())

        expected = sorted(f"{tag}-{n}" for tag in tags for n in range(turns))
        assert asyncio.run(shared_items()) == expected  # none lost, none doubled
    finally:
        asyncio.run(ObjectStorageSession.aclose_shared())
