"""Create a blob container on Azurite, tolerating one that already exists.

Standard library only (the local cloud must work without the ``azure`` extra): the
request is signed with the Shared Key scheme of the Azure Storage REST API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.error
import urllib.parse
import urllib.request
from email.utils import formatdate

API_VERSION = "2021-12-02"


def shared_key_authorization(
    method: str, url: str, headers: dict[str, str], account: str, key: str
) -> str:
    """The ``Authorization`` header of a Shared Key signed request to a path-style URL."""
    parts = urllib.parse.urlsplit(url)
    canonical_headers = "".join(
        f"{name}:{value.strip()}\n"
        for name, value in sorted((k.lower(), v) for k, v in headers.items())
        if name.startswith("x-ms-")
    )
    # Path-style endpoint (emulator): the account name appears in the path as well.
    canonical_resource = f"/{account}{parts.path}"
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    for name in sorted(query, key=str.lower):
        canonical_resource += f"\n{name.lower()}:{','.join(sorted(query[name]))}"
    lower = {k.lower(): v for k, v in headers.items()}
    content_length = lower.get("content-length", "")
    string_to_sign = "\n".join(
        [
            method,
            lower.get("content-encoding", ""),
            lower.get("content-language", ""),
            "" if content_length == "0" else content_length,
            lower.get("content-md5", ""),
            lower.get("content-type", ""),
            "",  # Date: x-ms-date is sent instead
            lower.get("if-modified-since", ""),
            lower.get("if-match", ""),
            lower.get("if-none-match", ""),
            lower.get("if-unmodified-since", ""),
            lower.get("range", ""),
        ]
    )
    string_to_sign += "\n" + canonical_headers + canonical_resource
    digest = hmac.new(
        base64.b64decode(key), string_to_sign.encode("utf-8"), hashlib.sha256
    ).digest()
    return f"SharedKey {account}:{base64.b64encode(digest).decode('ascii')}"


def create_container(endpoint: str, account: str, key: str, container: str) -> None:
    """Create ``container`` at the account's blob ``endpoint`` (one that exists is fine).

    Raises RuntimeError with Azurite's answer when it refuses, OSError when none comes.
    """
    url = f"{endpoint.rstrip('/')}/{container}?restype=container"
    headers = {
        "x-ms-date": formatdate(usegmt=True),
        "x-ms-version": API_VERSION,
        "Content-Length": "0",
    }
    headers["Authorization"] = shared_key_authorization("PUT", url, headers, account, key)
    # data=None: urllib would otherwise add a Content-Type that the signature does not cover.
    request = urllib.request.Request(url, data=None, method="PUT", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status = response.status
            body = response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        status = exc.code
        body = exc.read().decode("utf-8", "replace")
    if status == 201 or (status == 409 and "ContainerAlreadyExists" in body):
        return
    raise RuntimeError(f"Azure: creating container {container}: HTTP {status}: {body[:500]}")
