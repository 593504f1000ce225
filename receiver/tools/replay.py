"""`receiver export` and `receiver replay` (README "Commands").

Capture format: JSON Lines, one request per line::

    {"method": "POST", "path": "/webhooks/acme", "headers": {...}, "body": "..."}

with ``body_base64`` instead of ``body`` when the body is not UTF-8.

Theory of operation
-------------------
``export`` streams the store's raw requests (``Store.iter_raw_requests`` reads them in
batches) and writes and flushes one line per request, so a million rows never sit in
memory.

``replay`` reads its file twice. The first pass checks every record (and, with
``--resign``, that every record can be signed again), so a bad file is refused with exit
2 before anything is sent. The second pass streams the records through a small queue to
``--concurrency`` workers sharing one ``httpx.AsyncClient``; an optional limiter spaces
request starts ``1/--rate`` seconds apart. A connection failure is retried a bounded
number of times with backoff (a webhook sent twice is only a duplicate). ``--resign``
signs each record again just before it is sent, so its timestamp is fresh. HAR files
(browser and proxy tools) are read too: one record per ``log.entries[].request``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from receiver.config import Config, load_existing
from receiver.core.signatures import url_token
from receiver.core.timestamps import parse_iso
from receiver.errors import CannotResign, UsageError
from receiver.providers.base import WebhookRequest
from receiver.records import RawRequest
from receiver.store import open_store

ATTEMPTS = 3
"""Tries per request when the connection fails (refused, reset, timed out)."""
BACKOFF_SECONDS = 0.5
"""The wait before the second try; it doubles before each further one."""
TIMEOUT_SECONDS = 30.0
SHOWN_FAILURES = 10
"""How many non-2xx answers and connection failures are described on stderr."""

_UNSENT_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "upgrade",
    }
)
_WEBHOOK_PATH = re.compile(r"/webhooks/([^/?#]+)")
_OUTCOMES = ("applied", "duplicates", "superseded")


# --- export ----------------------------------------------------------------------


def capture_record(raw: RawRequest) -> dict[str, Any]:
    """One capture line's object for a stored raw request."""
    record: dict[str, Any] = {"method": raw.method, "path": raw.path, "headers": dict(raw.headers)}
    try:
        record["body"] = raw.body.decode("utf-8")
    except UnicodeDecodeError:
        record["body_base64"] = base64.b64encode(raw.body).decode("ascii")
    return record


def _moment(text: str, option: str) -> datetime:
    try:
        return parse_iso(text)
    except ValueError as exc:
        raise UsageError(f"{option} {text!r} {exc}") from None


async def _export(args: argparse.Namespace) -> int:
    since = _moment(args.since, "--since") if args.since else None
    until = _moment(args.until, "--until") if args.until else None
    config = load_existing(args.config)
    store = open_store(config.store_url)
    await store.open(ingest=False)
    out = sys.stdout
    try:
        rows = store.iter_raw_requests(args.provider, since, until, args.message)
        async for raw in rows:
            out.write(json.dumps(capture_record(raw), ensure_ascii=False) + "\n")
            out.flush()
        if args.message:
            deleted = sum(e.raw_deleted for e in await store.message_events(args.message))
            if deleted:
                print(
                    f"receiver export: {deleted} of the message's reports no longer have their"
                    " stored request (deleted by retention or erasure)",
                    file=sys.stderr,
                )
    except BrokenPipeError:  # `receiver export | head`: the reader has all it wants
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        os.close(devnull)
    finally:
        await store.close()
    days = config.settings.retention.raw_requests_days
    if days and (since is None or since < datetime.now(UTC) - timedelta(days=days)):
        print(
            f"receiver export: raw requests are kept {days} days ([retention]"
            " raw_requests_days); older ones were deleted",
            file=sys.stderr,
        )
    return 0


def run_export(args: argparse.Namespace) -> int:
    return asyncio.run(_export(args))


# --- reading capture and HAR files -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """One request to replay and where it came from (``FILE:LINE`` or a HAR entry)."""

    where: str
    request: WebhookRequest


def _string_map(value: Any, where: str, name: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise UsageError(f"{where}: {name} must be an object of strings")
    for key, item in value.items():
        if not isinstance(item, str):
            raise UsageError(f"{where}: {name}.{key} must be a string")
    return dict(value)


def _capture_entry(record: Any, where: str) -> Entry:
    if not isinstance(record, dict):
        raise UsageError(f"{where}: a capture line must be a JSON object")
    method = record.get("method", "POST")
    if not isinstance(method, str) or not re.fullmatch(r"[A-Za-z]{1,16}", method):
        raise UsageError(f'{where}: method must be an HTTP method such as "POST"')
    path = record.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise UsageError(f"{where}: path must be a string starting with /")
    headers = _string_map(record.get("headers", {}), where, "headers")
    if ("body" in record) == ("body_base64" in record):
        raise UsageError(f"{where}: exactly one of body and body_base64 is required")
    if "body" in record:
        if not isinstance(record["body"], str):
            raise UsageError(f"{where}: body must be a string")
        body = record["body"].encode("utf-8")
    else:
        try:
            body = base64.b64decode(record["body_base64"], validate=True)
        except (TypeError, binascii.Error):
            raise UsageError(f"{where}: body_base64 is not valid base64") from None
    return Entry(
        where, WebhookRequest(path=path, body=body, headers=headers, method=method.upper())
    )


def _har_entry(item: Any, where: str) -> Entry:
    request = item.get("request") if isinstance(item, dict) else None
    if not isinstance(request, dict):
        raise UsageError(f"{where}.request: is required and must be an object")
    method, url = request.get("method"), request.get("url")
    if not isinstance(method, str) or not method:
        raise UsageError(f"{where}.request.method: must be a string")
    if not isinstance(url, str) or not url:
        raise UsageError(f"{where}.request.url: must be a string")
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers: dict[str, str] = {}
    for index, header in enumerate(request.get("headers") or []):
        name = header.get("name") if isinstance(header, dict) else None
        value = header.get("value") if isinstance(header, dict) else None
        if not isinstance(name, str) or not isinstance(value, str):
            raise UsageError(f"{where}.request.headers[{index}]: needs string name and value")
        if name.startswith(":"):  # HTTP/2 pseudo-headers (:authority, :path, ...)
            continue
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    body = b""
    post = request.get("postData")
    if isinstance(post, dict):
        text = post.get("text")
        if isinstance(text, str):
            if post.get("encoding") == "base64":
                try:
                    body = base64.b64decode(text, validate=True)
                except binascii.Error:
                    raise UsageError(f"{where}.request.postData.text: not valid base64") from None
            else:
                body = text.encode("utf-8")
        elif isinstance(post.get("params"), list):
            pairs = [(p.get("name", ""), p.get("value", "")) for p in post["params"]]
            body = urlencode(pairs).encode()
        if "content-type" not in headers and isinstance(post.get("mimeType"), str):
            headers["content-type"] = post["mimeType"]
    return Entry(
        where, WebhookRequest(path=path, body=body, headers=headers, method=method.upper())
    )


def _is_har(path: Path) -> bool:
    """A ``.har`` file, or a JSON document (not JSON Lines) with ``log.entries``."""
    if path.suffix.lower() == ".har":
        return True
    with path.open("rb") as file:
        first = b""
        for line in file:
            if line.strip():
                first = line.strip()
                break
        if not first.startswith(b"{"):
            return False
        try:
            document = json.loads(first)
        except ValueError:
            file.seek(0)
            try:
                document = json.load(file)  # a pretty-printed document
            except (ValueError, UnicodeDecodeError):
                return False  # JSON Lines with a bad first line: reported as such
    entries = document.get("log", {}).get("entries") if isinstance(document, dict) else None
    return isinstance(entries, list)


def _read_har(path: Path, label: str) -> Iterator[Entry]:
    try:
        with path.open("rb") as file:
            document = json.load(file)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{label}: not a valid HAR file ({exc})") from None
    log = document.get("log") if isinstance(document, dict) else None
    entries = log.get("entries") if isinstance(log, dict) else None
    if not isinstance(entries, list):
        raise UsageError(f"{label}: log.entries: a HAR file needs a list of entries")
    for index, item in enumerate(entries):
        yield _har_entry(item, f"{label}: log.entries[{index}]")


def _read_lines(path: Path, label: str) -> Iterator[Entry]:
    with path.open("rb") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            where = f"{label}:{number}"
            try:
                record = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError:
                raise UsageError(f"{where}: the line is not UTF-8") from None
            except ValueError as exc:
                raise UsageError(f"{where}: not valid JSON ({exc})") from None
            yield _capture_entry(record, where)


def read_entries(path: Path, label: str | None = None) -> Iterator[Entry]:
    """The requests in a capture (JSON Lines) or HAR file, in order, read lazily.

    A bad file or record raises ``UsageError`` naming the file and line (or entry).
    """
    label = label or str(path)
    try:
        har = _is_har(path)
        yield from (_read_har if har else _read_lines)(path, label)
    except OSError as exc:
        raise UsageError(f"{label}: cannot be read ({exc.strerror or exc})") from None


# --- replay ------------------------------------------------------------------------


class Resigner:
    """Signs captured requests again with the configured secrets (``--resign``)."""

    def __init__(self, config: Config, base_url: str) -> None:
        self.config = config
        public = config.settings.public_base_url
        self.public_base_url = str(public).rstrip("/") if public is not None else base_url

    def __call__(self, entry: Entry, now: float) -> WebhookRequest:
        match = _WEBHOOK_PATH.match(entry.request.path)
        if match is None:
            raise CannotResign(f"{entry.where}: {entry.request.path} is not a /webhooks/NAME path")
        provider = self.config.providers.get(match.group(1))
        if provider is None:
            raise CannotResign(
                f"{entry.where}: no provider named {match.group(1)!r} in {self.config.source}"
            )
        request = entry.request
        if provider.config.url_token is not None:  # stored redacted: put the secret back
            request = replace(
                request, path=url_token.restore(request.path, provider.config.url_token)
            )
        try:
            return provider.resign(request, public_base_url=self.public_base_url, now=now)
        except CannotResign as exc:
            raise CannotResign(f"{entry.where}: provider {provider.name!r}: {exc}") from None


@dataclass(slots=True)
class Summary:
    """What the replay saw: answers by status code, outcomes of 200 answers, failures."""

    statuses: Counter[int] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=lambda: Counter(dict.fromkeys(_OUTCOMES, 0)))
    failed: int = 0
    problems: list[str] = field(default_factory=list)
    unshown: int = 0

    @property
    def sent(self) -> int:
        return sum(self.statuses.values()) + self.failed

    @property
    def ok(self) -> bool:
        return self.failed == 0 and all(200 <= code < 300 for code in self.statuses)

    def problem(self, text: str) -> None:
        if len(self.problems) < SHOWN_FAILURES:
            self.problems.append(text)
        else:
            self.unshown += 1

    def record(self, entry: Entry, response: httpx.Response) -> None:
        self.statuses[response.status_code] += 1
        if response.status_code == 200:
            try:
                counts = response.json()
            except ValueError:
                counts = None
            if isinstance(counts, dict):
                for kind in _OUTCOMES:
                    if isinstance(counts.get(kind), int):
                        self.outcomes[kind] += counts[kind]
        elif not 200 <= response.status_code < 300:
            detail = response.text[:200].replace("\n", " ")
            with_json = response.headers.get("content-type", "").endswith("json")
            if with_json:
                try:
                    problem = response.json()
                    detail = f"{problem.get('code', '')} {problem.get('detail', '')}".strip()
                except (ValueError, AttributeError):
                    pass
            self.problem(
                f"{entry.where}: {entry.request.method} {entry.request.path}: "
                f"{response.status_code} {detail}"
            )

    def lines(self, base_url: str) -> list[str]:
        lines = [f"replayed {self.sent} requests to {base_url}"]
        lines += [f"status {code}: {count}" for code, count in sorted(self.statuses.items())]
        lines.append(f"connection failures: {self.failed}")
        lines += [f"{kind}: {self.outcomes[kind]}" for kind in _OUTCOMES]
        return lines


class RequestPacer:
    """Spaces request starts ``1/rate`` seconds apart (shared by every worker)."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1 / rate if rate else 0.0
        self.next_start = time.monotonic()
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self.lock:
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


def _outgoing(request: WebhookRequest) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.lower() not in _UNSENT_HEADERS}


async def _send(
    client: httpx.AsyncClient, base_url: str, entry: Entry, resigner: Resigner | None
) -> httpx.Response | str:
    """The answer, or why the connection failed after ``ATTEMPTS`` tries."""
    delay = BACKOFF_SECONDS
    for attempt in range(1, ATTEMPTS + 1):
        request = resigner(entry, time.time()) if resigner else entry.request
        try:
            return await client.request(
                request.method,
                base_url + request.path,
                content=request.body,
                headers=_outgoing(request),
            )
        except httpx.TransportError as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if attempt == ATTEMPTS:
                return reason
            await asyncio.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def _progress() -> AbstractContextManager[Any]:
    if not sys.stderr.isatty():
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import Progress

    return Progress(console=Console(stderr=True), transient=False)


async def _replay_entries(
    entries: Iterator[Entry],
    *,
    total: int,
    base_url: str,
    concurrency: int,
    rate: float | None,
    resigner: Resigner | None,
) -> Summary:
    summary = Summary()
    limiter = RequestPacer(rate)
    queue: asyncio.Queue[Entry | None] = asyncio.Queue(maxsize=concurrency * 2)
    with _progress() as progress:
        task = progress.add_task("replaying", total=total) if progress is not None else None

        async def worker(client: httpx.AsyncClient) -> None:
            while (entry := await queue.get()) is not None:
                await limiter.wait()
                answer = await _send(client, base_url, entry, resigner)
                if isinstance(answer, str):
                    summary.failed += 1
                    summary.problem(
                        f"{entry.where}: {entry.request.method} {entry.request.path}: "
                        f"connection failed after {ATTEMPTS} attempts ({answer})"
                    )
                else:
                    summary.record(entry, answer)
                if progress is not None:
                    progress.advance(task)

        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, limits=limits) as client:
            workers = [asyncio.create_task(worker(client)) for _ in range(concurrency)]
            try:
                for entry in entries:
                    await queue.put(entry)
                for _ in workers:
                    await queue.put(None)
                await asyncio.gather(*workers)
            finally:
                for running in workers:
                    running.cancel()
    return summary


def _stdin_copy() -> Path:
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as spool:
        shutil.copyfileobj(sys.stdin.buffer, spool)
    return Path(spool.name)


def run_replay(args: argparse.Namespace) -> int:
    base_url = args.url.rstrip("/")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--url {args.url!r} must be an http:// or https:// base URL")
    resigner = Resigner(load_existing(args.config), base_url) if args.resign else None
    stdin = args.file == "-"
    path, label = (_stdin_copy(), "<stdin>") if stdin else (Path(args.file), args.file)
    try:
        total = 0
        now = time.time()
        for entry in read_entries(path, label):  # check everything before sending anything
            if resigner is not None:
                resigner(entry, now)
            total += 1
        summary = asyncio.run(
            _replay_entries(
                read_entries(path, label),
                total=total,
                base_url=base_url,
                concurrency=args.concurrency,
                rate=args.rate,
                resigner=resigner,
            )
        )
    finally:
        if stdin:
            path.unlink(missing_ok=True)
    for problem in summary.problems:
        print(f"receiver: {problem}", file=sys.stderr)
    if summary.unshown:
        print(f"receiver: ... and {summary.unshown} more failures", file=sys.stderr)
    print("\n".join(summary.lines(base_url)), flush=True)
    return 0 if summary.ok else 1


# --- the command line ----------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def add_commands(commands: Any, *, config_help: str) -> None:
    """Register ``export`` and ``replay`` on the CLI's subparsers."""
    export = commands.add_parser(
        "export",
        help="write stored webhook requests to stdout as JSON Lines capture records",
        description="Write the stored raw webhook requests, oldest first, as JSON Lines: "
        '{"method", "path", "headers", "body"} (body_base64 when the body is not UTF-8).',
    )
    export.add_argument("--provider", metavar="NAME", help="only this provider's requests")
    export.add_argument("--since", metavar="ISO", help="received at or after this time")
    export.add_argument("--until", metavar="ISO", help="received before this time")
    export.add_argument(
        "--message", metavar="ID", help="only requests with a report of this message (msg_...)"
    )
    export.add_argument("--config", help=config_help)
    export.set_defaults(run=run_export)

    replay = commands.add_parser(
        "replay",
        help="send captured webhook requests (JSON Lines or HAR) to a receiver",
        description="Send every request of a capture file (JSON Lines as `receiver export` "
        "writes, or a HAR file) to BASE_URL + its path; print a summary of status codes and "
        "outcomes; exit 1 if any request got a non-2xx answer or could not connect.",
    )
    replay.add_argument("file", metavar="FILE", help="capture (.jsonl) or HAR file; - for stdin")
    replay.add_argument(
        "--url", metavar="BASE_URL", required=True, help="e.g. http://127.0.0.1:8000"
    )
    replay.add_argument(
        "--resign",
        action="store_true",
        help="sign every request again with the configured secrets and a fresh timestamp",
    )
    replay.add_argument(
        "--concurrency", type=_positive_int, default=4, metavar="N", help="requests in flight (4)"
    )
    replay.add_argument(
        "--rate", type=_positive_float, metavar="R", help="at most R requests per second"
    )
    replay.add_argument("--config", help=config_help + "; used by --resign")
    replay.set_defaults(run=run_replay)


__all__ = ["Entry", "add_commands", "capture_record", "read_entries"]
