"""Agentick-shaped snapshots of a chosen size: messages, tool calls, base64 images."""

from __future__ import annotations

import base64
import random
from typing import Any


def agentick_snapshot(target_bytes: int, seed: int = 0) -> dict[str, Any]:
    """A snapshot of about ``target_bytes`` of JSON, shaped like agentick's."""
    rng = random.Random(seed)
    timeline: list[dict[str, Any]] = []
    size, tick = 0, 0
    while size < target_bytes:
        tick += 1
        text = " ".join(
            rng.choice(("agent", "tool", "result", "the", "of", "é")) for _ in range(60)
        )
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        if target_bytes >= 100_000 and tick % 3 == 0:
            raw = rng.randbytes(min(150_000, max(1_000, (target_bytes - size) * 3 // 4)))
            content.append(
                {
                    "type": "image",
                    "source": {
                        "type": "base64",
                        "mediaType": "image/png",
                        "data": base64.b64encode(raw).decode(),
                    },
                }
            )
            size += len(raw) * 4 // 3
        timeline.append(
            {
                "kind": "message",
                "tick": tick,
                "message": {"role": "user" if tick % 2 else "assistant", "content": content},
                "metadata": {"model": "m-1", "latencyMs": rng.randint(10, 900), "ok": True},
            }
        )
        size += len(text) + 150
    return {
        "version": "1.0",
        "sessionId": f"bench-{seed}",
        "tick": tick,
        "timeline": timeline,
        "comState": {"counter": tick, "flags": {"a": True, "b": None}},
        "dataCache": {"k": list(range(20))},
        "usage": {"inputTokens": 1234, "outputTokens": 567},
        "timestamp": 1_700_000_000_000,
    }
