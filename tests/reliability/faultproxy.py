"""A fault-injecting reverse proxy on loopback, between a store and its emulator.

Faults, drawn with a seeded RNG at ``rate`` (or taken from ``script`` first):

- ``error``: a provider-shaped 503 or 500 answer, without forwarding;
- ``reset``: the connection is dropped before forwarding;
- ``lost``: the request is forwarded and applied upstream, then the connection is
  dropped instead of answering (the client cannot know the write landed);
- ``cut`` (only when scripted or chosen in ``kinds``): the upstream's answer goes back
  with its full Content-Length but half its body, then the connection drops.

A fixed ``mode`` treats every request the same way: an HTTP status (``403``, ``503``,
...; answered provider-shaped, with ``code`` as the error code if given), ``"reset"``,
``"lost"`` or ``"stall"`` (no answer until the client hangs up, at most 30 s). Only
loopback addresses are used; every loop is bounded.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import ClientSession, ClientTimeout, web

KINDS = ("error", "reset", "lost")
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade"}

#: The error code each provider answers with, per status.
CODES = {
    "s3": {401: "InvalidAccessKeyId", 403: "AccessDenied", 500: "InternalError", 503: "SlowDown"},
    "gcs": {401: "authError", 403: "forbidden", 500: "backendError", 503: "backendError"},
    "azure": {
        401: "InvalidAuthenticationInfo",
        403: "AuthorizationFailure",
        500: "InternalError",
        503: "ServerBusy",
    },
}


def error_response(
    provider: str, status: int, method: str, code: str | None = None
) -> web.Response:
    """An error answer shaped as the provider's own (body, content type, headers)."""
    code = code or CODES[provider].get(status, "InternalError")
    headers = {"x-ms-error-code": code} if provider == "azure" else {}
    if provider == "gcs":
        body = json.dumps(
            {"error": {"code": status, "message": code, "errors": [{"reason": code}]}}
        )
        content_type = "application/json"
    else:
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>injected by the fault proxy</Message></Error>"
        )
        content_type = "application/xml"
    return web.Response(
        status=status,
        text=None if method == "HEAD" else body,
        content_type=content_type,
        headers=headers,
    )


@dataclass
class FaultProxy:
    """Forward to ``upstream`` (``http://127.0.0.1:PORT``), injecting faults.

    ``script`` lists the fault (or ``None``: forward untouched) of the first
    requests, before the random draws start. ``after_apply`` runs after the upstream
    applied a request whose answer is then lost (to let another writer in there).
    """

    upstream: str
    provider: str
    rate: float = 0.0
    seed: int = 0
    mode: int | str | None = None
    code: str | None = None
    kinds: tuple[str, ...] = KINDS
    script: list[str | None] = field(default_factory=list)
    after_apply: Callable[[], Awaitable[object]] | None = None
    requests: int = 0
    methods: Counter[str] = field(default_factory=Counter)
    log: list[str] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    url: str = ""

    async def __aenter__(self) -> FaultProxy:
        if not self.upstream.startswith("http://127.0.0.1:"):
            raise ValueError(f"the fault proxy forwards to loopback only, not {self.upstream}")
        self._rng = random.Random(self.seed)
        self._session = ClientSession(auto_decompress=False, timeout=ClientTimeout(total=60))
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()
        await self._session.close()

    @property
    def faulted(self) -> int:
        """Requests that met a fault, of any kind."""
        return sum(self.faults.values())

    def _draw(self) -> str | None:
        if self.script:
            return self.script.pop(0)
        if self.mode in ("reset", "lost"):
            return str(self.mode)
        if self._rng.random() >= self.rate:
            return None
        return self._rng.choice(self.kinds)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.methods[request.method] += 1
        self.log.append(request.method)
        body = await request.read()
        if isinstance(self.mode, int):
            self.faults[str(self.mode)] += 1
            return error_response(self.provider, self.mode, request.method, self.code)
        if self.mode == "stall":
            self.faults["stall"] += 1
            for _ in range(600):  # 30 s at most
                transport = request.transport
                if transport is None or transport.is_closing():
                    break
                await asyncio.sleep(0.05)
            return self._drop(request)
        fault = self._draw()
        if fault == "error":
            self.faults["error"] += 1
            status = self._rng.choice((500, 503))
            return error_response(self.provider, status, request.method)
        if fault == "reset":
            self.faults["reset"] += 1
            return self._drop(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with self._session.request(
            request.method,
            self.upstream + request.rel_url.raw_path_qs,
            headers=headers,
            data=body or None,
            allow_redirects=False,
            # Forward the headers as they are: an added Content-Type would break
            # Azure's SharedKey signature, which covers it.
            skip_auto_headers=("Content-Type", "Accept-Encoding", "User-Agent"),
        ) as upstream:
            payload = await upstream.read()
            if fault == "lost":
                self.faults["lost"] += 1
                if self.after_apply is not None:
                    await self.after_apply()
                return self._drop(request)
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
            if fault == "cut":
                self.faults["cut"] += 1
                cut = web.StreamResponse(status=upstream.status, headers=out)
                cut.content_length = len(payload)
                await cut.prepare(request)
                await cut.write(payload[: len(payload) // 2])
                self._drop(request)
                return cut
            if request.method == "HEAD":
                # A HEAD answer announces the object's size, not its own (empty) body.
                head = web.StreamResponse(status=upstream.status, headers=out)
                if "Content-Length" in upstream.headers:
                    head.content_length = int(upstream.headers["Content-Length"])
                await head.prepare(request)
                await head.write_eof()
                return head
            return web.Response(status=upstream.status, body=payload or None, headers=out)

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        transport = request.transport or getattr(request.protocol, "transport", None)
        if transport is not None:  # None: the client is already gone
            transport.abort()
        return web.Response(status=599)  # never reaches the client
