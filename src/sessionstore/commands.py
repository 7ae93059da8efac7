"""The commands of ``sessionstore``, on click; :mod:`sessionstore.cli` is the entry point.

Output is formatted by plain functions (:func:`ls_lines`, :func:`stat_lines`).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import click

from sessionstore.base import ObjectSessionStore
from sessionstore.copy import CopyReport, copy_sessions
from sessionstore.demo import run_demo
from sessionstore.errors import SessionStoreError, StoreConfigError
from sessionstore.exitcodes import exit_code
from sessionstore.registry import scheme_list
from sessionstore.types import SessionInfo
from sessionstore.url import open_store

__all__ = ["cli", "ls_lines", "shown_id", "stat_lines"]

T = TypeVar("T")


class _SomeFailed(Exception):
    """A command finished with failures (exit code 1); the message was printed."""


def _fail(message: str, code: int) -> None:
    click.echo(f"sessionstore: error: {message}", err=True)
    raise SystemExit(code)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except _SomeFailed:
        raise SystemExit(1) from None
    except SessionStoreError as exc:
        _fail(str(exc), exit_code(exc))
    except (click.ClickException, click.Abort, BrokenPipeError):
        raise
    except Exception as exc:  # no traceback for an operator, but the type and message
        _fail(f"unexpected {type(exc).__name__}: {exc}", 1)
    raise AssertionError("unreachable")  # pragma: no cover - _fail exits


async def _with_store(url: str, action: Callable[[ObjectSessionStore], Awaitable[T]]) -> T:
    async with open_store(url) as store:
        return await action(store)


def _parse_ttl(text: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise click.BadParameter(f"{text!r}: use seconds or a number with s, m, h or d (30d)")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    try:
        ttl = timedelta(seconds=float(match.group(1)) * unit)
    except OverflowError:
        raise click.BadParameter(f"{text!r}: the longest ttl is {timedelta.max.days}d") from None
    if ttl <= timedelta(0):
        raise click.BadParameter(f"{text!r}: the ttl must be longer than 0")
    return ttl


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def shown_id(session_id: str, encoding: str = "utf-8") -> str:
    """``session_id`` for a terminal: as is, or quoted with its invisible characters escaped.

    An id with a control, format or separator character (a newline, a bidi override),
    a character the output ``encoding`` cannot write (``会`` on a Latin-1 terminal) or
    a leading ``"`` is shown as a quoted string with ``\\n``- and ``\\u4f1a``-style
    escapes, so one line is one session and what is shown is unambiguous.
    """
    if (
        session_id.isprintable()
        and not session_id.startswith('"')
        and _writable(session_id, encoding)
    ):
        return session_id
    return '"' + "".join(_escaped(ch, encoding) for ch in session_id) + '"'


_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r", '"': '\\"', "\\": "\\\\"}


def _writable(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeError:
        return False
    return True


def _escaped(ch: str, encoding: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ch.isprintable() and _writable(ch, encoding):
        return ch
    return f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"


def _shown_url(url: str) -> str:
    """A store URL for a message: without its query (values there may be secrets)."""
    return url.split("?", 1)[0].split("#", 1)[0]


def _stdout_encoding() -> str:
    """The encoding of stdout (``ascii`` too, which click replaces with UTF-8: ids it
    cannot write are escaped all the same, as the terminal likely cannot show them)."""
    return getattr(sys.stdout, "encoding", None) or "utf-8"


def _utf8_argument(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A session id argument as typed: bytes that a non-UTF-8 locale left undecoded
    (surrogate escapes) are decoded as UTF-8, which every id is stored in."""
    if isinstance(value, tuple):
        return tuple(_utf8_argument(ctx, param, item) for item in value)
    if isinstance(value, str):
        try:
            return os.fsencode(value).decode("utf-8")
        except UnicodeError:
            return value  # not UTF-8 either: the store refuses it with its own message
    return value


def ls_lines(
    infos: Sequence[SessionInfo],
    ticks: Sequence[Any] | None,
    *,
    as_json: bool = False,
    encoding: str = "utf-8",
) -> list[str]:
    """The output of ``ls``: ids, or with ``ticks`` (``--long``) size, time and tick.

    Ids are shown for a terminal writing ``encoding`` (see :func:`shown_id`); JSON is
    ASCII, its escapes standing for any other character.
    """
    if ticks is None:
        ids = [info.session_id for info in infos]
        if as_json:
            return [json.dumps(ids, indent=2)]
        return [shown_id(i, encoding) for i in ids]
    rows = [
        {
            "id": info.session_id,
            "size": info.size,
            "last_modified": info.last_modified.isoformat() if info.last_modified else None,
            "tick": tick,
        }
        for info, tick in zip(infos, ticks, strict=True)
    ]
    if as_json:
        return [json.dumps(rows, indent=2)]
    return [
        f"{row['size'] if row['size'] is not None else '-':>10}  "
        f"{row['last_modified'] or '-':<32}  tick={row['tick']}  {shown_id(row['id'], encoding)}"
        for row in rows
    ]


def stat_lines(infos: Iterable[SessionInfo], encoding: str = "utf-8") -> list[str]:
    """The output of ``stat``: count, total bytes, oldest and newest session (ids
    shown for a terminal writing ``encoding``, see :func:`shown_id`)."""
    count, total = 0, 0
    oldest: tuple[datetime, str] | None = None
    newest: tuple[datetime, str] | None = None
    for info in infos:
        count += 1
        total += info.size or 0
        if info.last_modified is not None:
            entry = (info.last_modified, info.session_id)
            if oldest is None or entry[0] < oldest[0]:
                oldest = entry
            if newest is None or entry[0] > newest[0]:
                newest = entry
    lines = [f"sessions: {count}", f"bytes:    {total}"]
    for label, found in (("oldest:  ", oldest), ("newest:  ", newest)):
        if found is not None:
            lines.append(f"{label} {found[0].isoformat()}  {shown_id(found[1], encoding)}")
    return lines


class _Group(click.Group):
    """A group whose help text's ``{schemes}`` is every scheme of the registry, read only
    when the help is shown."""

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Write the help text with the registry's schemes in it."""
        template = self.help or ""
        self.help = template.replace("{schemes}", scheme_list())
        try:
            super().format_help_text(ctx, formatter)
        finally:
            self.help = template


@click.group(
    cls=_Group,
    help="Inspect, copy and migrate session stores by URL ({schemes})."
    "\n\nExit codes: 0 ok; 1 some sessions failed or were not found;"
    " 2 usage or configuration error; 3 access refused; 4 store unavailable.",
    epilog="Example: sessionstore ls s3://my-bucket/sessions/ --long",
    context_settings={"help_option_names": ["-h", "--help"]},
)
def cli() -> None:
    # Text the terminal's encoding cannot write (an id, a message) is escaped rather
    # than ending the command half way (Python's stderr already does this).
    stdout = sys.stdout
    if isinstance(stdout, io.TextIOWrapper) and stdout.errors == "strict":
        stdout.reconfigure(errors="backslashreplace")


@cli.command(epilog="Example: sessionstore ls gs://bucket/sessions/ --long")
@click.argument("url")
@click.option("--long", "-l", "long_", is_flag=True, help="Size, last-modified and tick.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def ls(url: str, long_: bool, as_json: bool) -> None:
    """List the session ids of a store (sorted)."""

    async def action(store: ObjectSessionStore) -> None:
        infos = sorted([i async for i in store.iter_info()], key=lambda i: i.session_id)
        ticks = None
        if long_:  # the tick needs a read: 16 at a time
            ticks = await _gather_bounded([_tick(store, i.session_id) for i in infos], 16)
        for line in ls_lines(infos, ticks, as_json=as_json, encoding=_stdout_encoding()):
            click.echo(line)

    _run(_with_store(url, action))


@cli.command(epilog="Example: sessionstore get file:.sessions sess-1 > sess-1.json")
@click.argument("url")
@click.argument("session_id", callback=_utf8_argument)
def get(url: str, session_id: str) -> None:
    """Print one session as pretty JSON, in UTF-8 whatever the locale (exit 1 if absent)."""

    async def action(store: ObjectSessionStore) -> None:
        snapshot = await store.load(session_id)
        if snapshot is None:
            click.echo(f"sessionstore: {session_id!r} not found in {_shown_url(url)}", err=True)
            raise _SomeFailed
        # JSON interchange is UTF-8 (RFC 8259): bytes to stdout, not the locale's text.
        click.echo(json.dumps(snapshot, indent=2, ensure_ascii=False).encode())

    _run(_with_store(url, action))


@cli.command(epilog="Example: sessionstore put az://container/sessions/ sess-1 snap.json")
@click.argument("url")
@click.argument("session_id", callback=_utf8_argument)
@click.argument("file", type=click.File("rb"), default="-")
@click.option("--if-absent", is_flag=True, help="Fail if the session exists.")
def put(url: str, session_id: str, file: Any, if_absent: bool) -> None:
    """Store a snapshot read as UTF-8 JSON from FILE (or stdin), validated before writing."""
    try:
        snapshot = json.loads(file.read(), parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        _fail(f"{file.name} is not JSON: {exc}", 2)
    except RecursionError:
        _fail(f"{file.name} nests too deeply to be a snapshot", 2)
    if not isinstance(snapshot, dict):
        _fail(f"{file.name} holds a JSON {type(snapshot).__name__}, not an object", 2)

    async def action(store: ObjectSessionStore) -> None:
        version = await store.save(session_id, snapshot, if_absent=if_absent)
        click.echo(f"saved {session_id!r} version={version}")

    _run(_with_store(url, action))


@cli.command(epilog="Example: sessionstore rm s3://bucket/sessions/ sess-1 sess-2 --yes")
@click.argument("url")
@click.argument("session_ids", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def rm(url: str, session_ids: tuple[str, ...], yes: bool) -> None:
    """Delete sessions (asks first when run on a terminal)."""
    if not yes and sys.stdin.isatty():
        click.confirm(f"delete {len(session_ids)} session(s) from {_shown_url(url)}?", abort=True)

    async def action(store: ObjectSessionStore) -> None:
        absent = 0
        for session_id in session_ids:
            present = await store.has(session_id)
            await store.delete(session_id)  # an expired one too
            if present:
                click.echo(f"deleted {session_id!r}")
            else:
                absent += 1
                click.echo(f"sessionstore: {session_id!r} not found in {_shown_url(url)}", err=True)
        if absent:
            raise _SomeFailed

    _run(_with_store(url, action))


@cli.command(epilog="Example: sessionstore stat gs://bucket/sessions/")
@click.argument("url")
def stat(url: str) -> None:
    """Count, total bytes, oldest and newest session of a store."""

    async def action(store: ObjectSessionStore) -> None:
        infos = [info async for info in store.iter_info()]
        for line in stat_lines(infos, _stdout_encoding()):
            click.echo(line)

    _run(_with_store(url, action))


@cli.command("purge-expired", epilog="Example: sessionstore purge-expired file:.sessions --ttl 30d")
@click.argument("url")
@click.option(
    "--ttl",
    required=True,
    help="Age after which a session expires: seconds (3600) or 15m, 12h, 30d.",
)
def purge_expired(url: str, ttl: str) -> None:
    """Delete every session not saved within TTL."""
    limit = _parse_ttl(ttl)

    async def action(store: ObjectSessionStore) -> None:
        click.echo(f"deleted {await store.purge_expired(limit)} expired session(s)")

    _run(_with_store(url, action))


@cli.command(
    epilog="Example: sessionstore cp s3://old-bucket/sessions/ gs://new-bucket/sessions/"
    " --delete-source"
)
@click.argument("src_url")
@click.argument("dst_url")
@click.option("--ids", multiple=True, help="Copy only these ids (repeatable).")
@click.option("--concurrency", "-j", default=16, show_default=True, type=click.IntRange(1, 256))
@click.option("--if-absent", is_flag=True, help="Keep sessions the destination has.")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace a differing destination session even if it is not older"
    " (still only the version cp read).",
)
@click.option("--delete-source", is_flag=True, help="Delete each verified copy's source.")
def cp(
    src_url: str,
    dst_url: str,
    ids: tuple[str, ...],
    concurrency: int,
    if_absent: bool,
    overwrite: bool,
    delete_source: bool,
) -> None:
    """Copy or migrate sessions between two stores; identical ones are skipped.

    A destination session that differs is replaced only if it is older (both carry an
    integer tick and the destination's is lower); otherwise it is a conflict: counted
    as failed, listed, exit 1, and its source is not deleted. --overwrite replaces it
    anyway, still only if nobody wrote it since cp read it.
    """
    if if_absent and overwrite:
        raise click.UsageError("--if-absent and --overwrite exclude each other")

    async def action() -> None:
        async with open_store(src_url) as src, open_store(dst_url) as dst:
            if delete_source and not dst.capabilities.shared_across_processes:
                raise StoreConfigError(
                    f"--delete-source to {dst.provider}:// would lose every session when the"
                    " command exits: copy to a lasting store"
                )
            report = await _copy_with_progress(
                src, dst, ids or None, concurrency, if_absent, overwrite, delete_source
            )
        click.echo(
            f"copied {report.copied}, skipped {report.skipped}, failed {len(report.failures)}"
            + (f", deleted from source {report.deleted}" if delete_source else "")
        )
        if report.failures:
            for session_id, error in report.failures:
                click.echo(f"failed {session_id!r}: {error}", err=True)
            raise _SomeFailed

    _run(action())


@cli.command(epilog="Example: sessionstore demo   (or: sessionstore demo memory://)")
@click.argument("url", required=False)
def demo(url: str | None) -> None:
    """Save, list, load and delete a few sessions (default: the embedded store)."""
    _run(run_demo(url, echo=click.echo))


async def _tick(store: ObjectSessionStore, session_id: str) -> Any:
    try:
        snapshot = await store.load(session_id)
    except SessionStoreError as exc:
        click.echo(f"sessionstore: warning: {session_id!r}: {exc}", err=True)
        return None
    return snapshot.get("tick") if snapshot else None


async def _gather_bounded(coros: Sequence[Awaitable[T]], limit: int) -> list[T]:
    semaphore = asyncio.Semaphore(limit)

    async def one(coro: Awaitable[T]) -> T:
        async with semaphore:
            return await coro

    return list(await asyncio.gather(*(one(c) for c in coros)))


async def _copy_with_progress(
    src: ObjectSessionStore,
    dst: ObjectSessionStore,
    ids: Sequence[str] | None,
    concurrency: int,
    if_absent: bool,
    overwrite: bool,
    delete_source: bool,
) -> CopyReport:
    def run(progress: Callable[[CopyReport], None]) -> Awaitable[CopyReport]:
        return copy_sessions(
            src,
            dst,
            ids=ids,
            concurrency=concurrency,
            if_absent=if_absent,
            overwrite=overwrite,
            delete_source=delete_source,
            progress=progress,
        )

    total = len(ids) if ids else 0
    if not ids:  # one listing pass for the total (one request per 1000 sessions)
        async for _ in src.iter_ids():
            total += 1
    if not sys.stderr.isatty():
        last = [time.monotonic()]

        def lines(report: CopyReport) -> None:
            now = time.monotonic()
            if report.done % 500 == 0 or report.done == total or now - last[0] >= 10:
                last[0] = now
                click.echo(
                    f"progress {report.done}/{total}: copied {report.copied},"
                    f" skipped {report.skipped}, failed {len(report.failures)}",
                    err=True,
                )

        return await run(lines)
    bar: Any
    with click.progressbar(length=total, label="copying", file=sys.stderr) as bar:
        shown = [0]

        def advance(report: CopyReport) -> None:
            bar.update(report.done - shown[0])
            shown[0] = report.done

        return await run(advance)


@cli.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    epilog='Example: eval "$(sessionstore localcloud up)"',
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def localcloud(args: tuple[str, ...]) -> None:
    """Run the emulators locally (up, down, status, env; `localcloud --help` for more).

    The same as ``python -m sessionstore.localcloud``: LocalStack, fake-gcs-server,
    Azurite and moto server on 127.0.0.1, without Docker.
    """
    from sessionstore.localcloud.command import main

    raise SystemExit(main(args, prog="sessionstore localcloud"))
