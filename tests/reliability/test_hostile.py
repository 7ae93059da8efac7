"""Hostile input on every cloud store: odd ids, bombs, foreign objects, bad credentials.

The contract suite (tests/contract.py) already gives every store fixed odd ids,
invalid ids, corrupt and truncated bodies, a compressed bomb and a few foreign keys;
this file adds generated and longest ids, bigger bombs under a memory trace (in a
process of their own: tests/tracedpeak.py), more foreign objects with one-object
pages, and wrong credentials with sentinel secrets.
"""

import asyncio
import base64
import dataclasses
import functools
import gzip
import json
import logging
import traceback
import zlib
from collections.abc import Callable
from typing import Any

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionstore import (
    InvalidSessionIdError,
    ObjectSessionStore,
    SnapshotDecodeError,
    SnapshotTooLargeError,
    StoreAccessError,
)
from sessionstore.keys import MAX_KEY_BYTES, decode_key
from sessionstore.testing import Emulator, emulator_store
from tests.contract import put_raw
from tests.reliability.conftest import emulator_of
from tests.reliability.faultproxy import FaultProxy
from tests.reliability.scenario import build_store, upstream_of
from tests.tracedpeak import Traced, run_traced

_CHARS = st.characters(codec="utf-8", categories=("L", "M", "N", "P", "S", "Z", "Cc", "Cf"))
hostile_ids = (
    st.text(_CHARS, min_size=1, max_size=60)
    | st.text(_CHARS, min_size=150, max_size=400)  # long: many exceed the key limit
    | st.sampled_from(["/", "..", "../x", "a/../../b", "\x00", "%2e%2e", " ", "é" * 100])
)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(session_ids=st.lists(hostile_ids, min_size=1, max_size=6, unique=True))
def test_hostile_ids_round_trip_inside_the_prefix(
    provider: str, emulator: Emulator, unique_prefix: str, session_ids: list[str]
) -> None:
    async def check() -> None:
        async with build_store(provider, emulator, None, unique_prefix) as store:
            kept = []
            for session_id in session_ids:
                try:
                    key = store._key(session_id)
                except InvalidSessionIdError:  # its key would pass 1024 bytes
                    with pytest.raises(InvalidSessionIdError):
                        await store.save(session_id, {"id": session_id})
                    continue
                assert key.startswith(store.prefix) and "/" not in key[len(store.prefix) :]
                assert len(key.encode()) <= MAX_KEY_BYTES
                await store.save(session_id, {"id": session_id})
                kept.append(session_id)
            page = await store._list_page(store.prefix, page_size=1000, token=None)
            keys = [obj.key for obj in page.objects]
            assert all(key.startswith(store.prefix) for key in keys)
            assert sorted(decode_key(store.prefix, key) or "" for key in keys) == sorted(kept)
            assert await store.list() == sorted(kept)
            for session_id in kept:
                assert await store.load(session_id) == {"id": session_id}
                await store.delete(session_id)
            assert await store.list() == []

    asyncio.run(check())


async def test_longest_key_round_trips(provider: str, make_store: Any) -> None:
    store = make_store()
    room = MAX_KEY_BYTES - len(store.prefix.encode()) - len(".json")
    longest = "é" * (room // 6 - 1) + "a" * (room - 6 * (room // 6 - 1))
    assert len(store._key(longest).encode()) == MAX_KEY_BYTES
    await store.save(longest, {"tick": 1})
    assert await store.list() == [longest]
    assert await store.load(longest) == {"tick": 1}
    with pytest.raises(InvalidSessionIdError):
        await store.save(longest + "a", {"tick": 1})
    await store.delete(longest)
    assert await store.list() == []


async def test_foreign_objects_never_break_list(provider: str, make_store: Any) -> None:
    store = make_store()
    await store.save("mine", {"tick": 1})
    foreign = [
        "",  # a "folder" marker: the prefix itself
        "UPPER.JSON",
        "mine.json.tmp",
        "%41.json",  # decodes to "A", whose key is "A.json": not ours
        "é.json",  # not percent-encoded: not ours
        "sub/",
        "sub/deeper/x.json",
        "z/y.json",
    ]
    for key in foreign:
        await put_raw(store, store.prefix + key, b"\x00not a snapshot")
    await put_raw(store, store.prefix + "foreign.json", b"[1, 2]")  # our name, not our body
    assert await store.list() == ["foreign", "mine"]
    assert sorted([i async for i in store.iter_ids(page_size=1)]) == ["foreign", "mine"]
    assert await store.load("mine") == {"tick": 1}
    with pytest.raises(SnapshotDecodeError, match="foreign.json"):
        await store.load("foreign")


def _compressed(compress: Callable[[bytes], bytes], flush: Callable[[], bytes], mb: int) -> bytes:
    chunk = b"0" * 1_000_000
    parts = [compress(b'{"a":"')]
    parts += [compress(chunk) for _ in range(mb)]
    parts += [compress(b'"}'), flush()]
    return b"".join(parts)


@functools.cache
def bombs() -> dict[str, tuple[bytes, type[Exception]]]:
    """Bodies that are small on the wire and huge (or wrong) once decompressed."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    gzip_bomb = _compressed(z.compress, z.flush, 200)
    c = zstandard.ZstdCompressor(level=3).compressobj()
    zstd_bomb = _compressed(c.compress, c.flush, 200)
    small_gzip = gzip.compress(b'{"tick": 1}')
    small_zstd = zstandard.ZstdCompressor().compress(b'{"tick": 1}')
    return {
        "gzip bomb": (gzip_bomb, SnapshotTooLargeError),
        "zstd bomb": (zstd_bomb, SnapshotTooLargeError),
        "truncated gzip bomb": (gzip_bomb[: len(gzip_bomb) // 2], SnapshotTooLargeError),
        "gzip member + bomb member": (small_gzip + gzip_bomb, SnapshotDecodeError),
        "zstd frame + bomb frame": (small_zstd + zstd_bomb, SnapshotDecodeError),
        "3 MB plain": (b'{"a":"' + b"1" * 3_000_000 + b'"}', SnapshotTooLargeError),
    }


async def test_bombs_and_oversized_bodies_stay_bounded(
    provider: str, emulator: Emulator, make_store: Any
) -> None:
    limit = 1_000_000
    store = make_store(max_snapshot_bytes=limit)
    expected = {}
    for i, (name, (body, error)) in enumerate(bombs().items()):
        await put_raw(store, store.prefix + f"bomb-{i}.json", body)
        expected[f"bomb-{i}"] = (name, body, error)
    # Loaded and traced in a process of its own, by a store like this one.
    where = {
        "provider": provider,
        "emulator": dataclasses.asdict(emulator),
        "options": {"prefix": store.prefix, "max_snapshot_bytes": limit},
        "session_ids": list(expected),
    }
    payload = json.dumps(where).encode()
    work = "tests.reliability.test_hostile:load_bombs_traced"
    results = await asyncio.to_thread(run_traced, work, payload)
    for session_id, (name, body, error) in expected.items():
        peak, raised = results[session_id]
        print(f"{provider} {name} ({len(body) / 1e3:.0f} KB stored): peak {peak / 1e6:.1f} MB")
        assert raised == error.__name__, name
        assert peak < 5 * limit, name  # a bomb is 200 MB once decompressed


def load_bombs_traced(payload: bytes) -> dict[str, list[Any]]:
    """In a process of its own (tests.tracedpeak): each session's peak bytes allocated
    while the store loads it, and the exception that refused it.

    Each session is loaded once untraced first, so that what a store builds once
    (its SDK client, connections, lazy imports) is not counted as the load's.
    """
    where = json.loads(payload)
    emulator = Emulator(**where["emulator"])
    store = emulator_store(where["provider"], emulator, **where["options"])

    async def load_all() -> dict[str, list[Any]]:
        results: dict[str, list[Any]] = {}
        try:
            for session_id in where["session_ids"]:
                with Traced():
                    await store.load(session_id)
                with Traced() as traced:
                    await store.load(session_id)
                results[session_id] = [traced.peak, traced.raised]
        finally:
            await store.aclose()
        return results

    return asyncio.run(load_all())


# ---------------------------------------------------------------- credentials

SECRET_KEY = "SENTINEL-SECRET-KEY-7d1e"
TOKEN = "SENTINEL-TOKEN-4b2a"
SAS_SIG = "SENTINEL-SAS-SIG-9c3f"
ACCOUNT_KEY = base64.b64encode(b"SENTINEL-ACCOUNT-KEY-" * 3).decode()
SDK_LOGGERS = ("botocore", "aiobotocore", "azure", "urllib3", "google", "aiohttp", "requests")

#: case -> (provider, the proxy's fixed answer: status and error code (None: the
#: emulator's own answer), what the message must name, requests sent, the secrets)
CREDENTIAL_CASES: dict[str, tuple[str, int | None, str | None, str, int, tuple[str, ...]]] = {
    "s3 keys": ("s3", 403, "InvalidAccessKeyId", "InvalidAccessKeyId", 1, (SECRET_KEY, TOKEN)),
    # google-auth answers a 401 by refreshing the token and sending again, twice ...
    "gcs token": ("gcs", 401, "authError", "Unauthorized, HTTP 401", 3, (TOKEN, TOKEN + "-2")),
    # ... and a token it cannot refresh fails on the refresh.
    "gcs bare token": ("gcs", 401, "authError", "RefreshError", 1, (TOKEN,)),
    "azure account key": ("azure", None, None, "AuthorizationFailure", 1, (ACCOUNT_KEY,)),
    "azure sas": ("azure", None, None, "HTTP 403", 1, (SAS_SIG,)),
}


def _store_with_secrets(case: str, emulator: Emulator, endpoint: str) -> ObjectSessionStore:
    if case == "s3 keys":
        return build_store(
            "s3",
            emulator,
            endpoint,
            "p/",
            aws_access_key_id="AKIASENTINELKEYID",
            aws_secret_access_key=SECRET_KEY,
            aws_session_token=TOKEN,
        )
    if case.startswith("gcs"):
        from datetime import UTC, datetime, timedelta

        from google.cloud import storage
        from google.oauth2.credentials import Credentials

        from sessionstore.stores.gcs import GCSSessionStore

        def refresh(request: Any, scopes: Any) -> tuple[str, datetime]:
            return TOKEN + "-2", datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)

        handler = refresh if case == "gcs token" else None
        client = storage.Client(
            project="test",
            credentials=Credentials(token=TOKEN, refresh_handler=handler),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": endpoint},
        )
        client._bucket_metadata_cache = None  # as the store does for its own clients
        return GCSSessionStore(emulator.bucket, client=client, prefix="p/")
    from sessionstore.stores.azure import AzureBlobSessionStore

    if case == "azure account key":
        return AzureBlobSessionStore(
            emulator.bucket,
            connection_string="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={ACCOUNT_KEY};BlobEndpoint={endpoint}/devstoreaccount1;",
            prefix="p/",
        )
    sas = f"sv=2024-08-04&ss=b&srt=sco&sp=rwdlc&se=2099-01-01T00:00:00Z&sig={SAS_SIG}"
    return AzureBlobSessionStore(
        emulator.bucket, account_url=f"{endpoint}/devstoreaccount1?{sas}", prefix="p/"
    )


@pytest.mark.parametrize("case", CREDENTIAL_CASES)
async def test_wrong_credentials_fail_clearly_and_leak_nothing(
    case: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    """One request, a StoreAccessError that says what and where, and no secret in any
    message, traceback, repr or log line at DEBUG.

    Azurite checks account keys and SAS signatures: its own 403 is used. LocalStack
    and fake-gcs-server accept any credentials, so the proxy answers what AWS and GCS
    answer to a wrong key or token.
    """
    provider, status, code, expected, sent, secrets = CREDENTIAL_CASES[case]
    emulator = emulator_of(provider, request)
    caplog.set_level(logging.DEBUG)
    for name in ("sessionstore", *SDK_LOGGERS):
        caplog.set_level(logging.DEBUG, logger=name)
    upstream = upstream_of(provider, emulator)
    async with FaultProxy(upstream, provider, mode=status, code=code) as proxy:
        store = _store_with_secrets(case, emulator, proxy.url)
        async with store:
            with pytest.raises(StoreAccessError) as info:
                await store.save("s", {"tick": 1})
    assert proxy.requests == sent
    message = str(info.value)
    assert f"{provider} save {store.location}/p/s.json" in message
    assert "check the credentials" in message and expected in message
    ours = [
        message,
        repr(info.value),
        "".join(traceback.format_exception(info.value)),  # the whole chain, SDK's included
        repr(store),
        *(r.getMessage() for r in caplog.records if r.name.startswith("sessionstore")),
    ]
    assert [text for text in ours if any(secret in text for secret in secrets)] == []
    sdk_lines = [
        f"{r.name}: {r.getMessage()} {r.args}"
        for r in caplog.records
        if not r.name.startswith("sessionstore")
    ]
    assert sdk_lines  # the SDKs' DEBUG lines were captured
    # botocore's own DEBUG lines print the signed headers, session token included
    # (docs/RELIABILITY.md): the only leak, and not through our logger.
    leaks = [
        line
        for line in sdk_lines
        for secret in secrets
        if secret in line and not (secret == TOKEN and line.startswith("botocore"))
    ]
    assert leaks == []
