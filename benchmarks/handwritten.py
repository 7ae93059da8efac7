"""What a user writes by hand with the same SDKs and stdlib ``json``: the baseline.

Each baseline has the same shape as a store: ``save(id, snapshot)``, ``load(id)``,
``aclose()`` (``close()`` for the ``Sync`` ones, the baseline of SyncSessionStore on
each provider's synchronous SDK: boto3, google-cloud-storage, azure-storage-blob),
and the SDK's defaults except the emulator endpoint (retries, checksums, connection
pools, the default thread pool for the synchronous GCS SDK).
Each stores what a store stores: the same JSON document at ``prefix + id + ".json"``
with ``Content-Type: application/json``, and nothing more (no metadata, no
conditions, no retries of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from sessionstore.testing import Emulator


class S3ByHand:
    """aioboto3 put_object / get_object with json.dumps / json.loads."""

    def __init__(self, emulator: Emulator, prefix: str) -> None:
        self.emulator, self.prefix = emulator, prefix
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None

    async def _c(self) -> Any:
        if self._client is None:
            import aioboto3

            self._client = await self._stack.enter_async_context(
                aioboto3.Session().client("s3", **self.emulator.options)
            )
        return self._client

    async def save(self, session_id: str, snapshot: dict[str, Any]) -> None:
        await (await self._c()).put_object(
            Bucket=self.emulator.bucket,
            Key=f"{self.prefix}{session_id}.json",
            Body=json.dumps(snapshot).encode(),
            ContentType="application/json",
        )

    async def load(self, session_id: str) -> Any:
        response = await (await self._c()).get_object(
            Bucket=self.emulator.bucket, Key=f"{self.prefix}{session_id}.json"
        )
        async with response["Body"] as body:
            return json.loads(await body.read())

    async def aclose(self) -> None:
        await self._stack.aclose()


class GCSByHand:
    """google-cloud-storage upload_from_string / download_as_bytes in worker threads."""

    def __init__(self, emulator: Emulator, prefix: str) -> None:
        from google.cloud import storage

        self.prefix = prefix
        self._bucket = storage.Client(project="test").bucket(emulator.bucket)

    async def save(self, session_id: str, snapshot: dict[str, Any]) -> None:
        blob = self._bucket.blob(f"{self.prefix}{session_id}.json")
        await asyncio.to_thread(
            blob.upload_from_string, json.dumps(snapshot), content_type="application/json"
        )

    async def load(self, session_id: str) -> Any:
        blob = self._bucket.blob(f"{self.prefix}{session_id}.json")
        return json.loads(await asyncio.to_thread(blob.download_as_bytes))

    async def aclose(self) -> None:
        self._bucket.client.close()


class AzureByHand:
    """azure-storage-blob aio upload_blob / download_blob with json."""

    def __init__(self, emulator: Emulator, prefix: str) -> None:
        from azure.storage.blob import ContentSettings
        from azure.storage.blob.aio import ContainerClient

        self.prefix = prefix
        self._json = ContentSettings(content_type="application/json")
        self._client = ContainerClient.from_connection_string(
            emulator.options["connection_string"], emulator.bucket
        )

    async def save(self, session_id: str, snapshot: dict[str, Any]) -> None:
        await self._client.upload_blob(
            f"{self.prefix}{session_id}.json",
            json.dumps(snapshot).encode(),
            overwrite=True,
            content_settings=self._json,
        )

    async def load(self, session_id: str) -> Any:
        downloader = await self._client.download_blob(f"{self.prefix}{session_id}.json")
        return json.loads(await downloader.readall())

    async def aclose(self) -> None:
        await self._client.close()


BY_HAND = {"s3": S3ByHand, "gcs": GCSByHand, "azure": AzureByHand}


class S3SyncByHand:
    """boto3 put_object / get_object with json.dumps / json.loads (a Lambda's default)."""

    def __init__(self, emulator: Emulator, prefix: str) -> None:
        import boto3

        self.bucket, self.prefix = emulator.bucket, prefix
        self._client = boto3.client("s3", **emulator.options)

    def save(self, session_id: str, snapshot: dict[str, Any]) -> None:
        self._client.put_object(
            Bucket=self.bucket,
            Key=f"{self.prefix}{session_id}.json",
            Body=json.dumps(snapshot).encode(),
            ContentType="application/json",
        )

    def load(self, session_id: str) -> Any:
        response = self._client.get_object(
            Bucket=self.bucket, Key=f"{self.prefix}{session_id}.json"
        )
        return json.loads(response["Body"].read())

    def close(self) -> None:
        self._client.close()


class GCSSyncByHand:
    """google-cloud-storage upload_from_string / download_as_bytes, in the caller's thread."""

    def __init__(self, emulator: Emulator, prefix: str) -> None:
        from google.cloud import storage

        self.prefix = prefix
        self._bucket = storage.Client(project="test").bucket(emulator.bucket)

    def save(self, session_id: str, snapshot: dict[str, Any]) -> None:
        blob = self._bucket.blob(f"{self.prefix}{session_id}.json")
        blob.upload_from_string(json.dumps(snapshot), content_type="application/json")

    def load(self, session_id: str) -> Any:
        return json.loads(self._bucket.blob(f"{self.prefix}{session_id}.json").download_as_bytes())

    def close(self) -> None:
        self._bucket.client.close()


class AzureSyncByHand:
    """azure-storage-blob (sync) upload_blob / download_blob with json."""

    def __init__(self, emulator: Emulator, prefix: str) -> None:
        from azure.storage.blob import ContainerClient, ContentSettings

        self.prefix = prefix
        self._json = ContentSettings(content_type="application/json")
        self._client = ContainerClient.from_connection_string(
            emulator.options["connection_string"], emulator.bucket
        )

    def save(self, session_id: str, snapshot: dict[str, Any]) -> None:
        self._client.upload_blob(
            f"{self.prefix}{session_id}.json",
            json.dumps(snapshot).encode(),
            overwrite=True,
            content_settings=self._json,
        )

    def load(self, session_id: str) -> Any:
        return json.loads(self._client.download_blob(f"{self.prefix}{session_id}.json").readall())

    def close(self) -> None:
        self._client.close()


SYNC_BY_HAND = {"s3": S3SyncByHand, "gcs": GCSSyncByHand, "azure": AzureSyncByHand}
