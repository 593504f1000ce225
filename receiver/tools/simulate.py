"""`receiver simulate` (README "Commands"): a realistic, correctly signed report stream.

For the configured provider NAME, ``--messages N`` messages each get a status sequence
in that provider type's own vocabulary and format (``queued -> sent -> delivered``,
``accepted -> failed`` with one of the provider's error codes, some expired or
rejected), with increasing provider timestamps. A fraction ``--duplicates F`` of the
reports is sent twice and ``--shuffle`` mixes the whole stream (out-of-order
delivery). Everything but the signatures is a pure function of ``--seed`` and
``--start``, so the same seed gives the same stream and the same expectations.

Every request is built twice: once up front, parsed by the configured provider's own
``parse()`` so the expected final statuses come from the real mapping and the one merge
rule (``receiver.core.status.merge``); and again just before it is posted, so
time-limited signatures are fresh however long the stream takes.

What a provider type reports, and how its requests are made, is its testing module's
``Simulation`` (``receiver.testing.base``): this module is provider-neutral.

``--verify-token`` then looks every message up through the staff API and compares its
status and error code. Exit 0 when everything matched, 1 on any mismatch or non-2xx
answer, 2 on bad usage or config.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from receiver.config import Config, load_existing
from receiver.core.reports import Report
from receiver.core.status import MessageState, merge
from receiver.core.timestamps import parse_iso
from receiver.errors import ConfigError, ReceiverError, UsageError
from receiver.providers.base import InboundRequest
from receiver.testing.base import (
    Build,
    Context,
    Journey,
    Simulation,
    SimulationError,
    simulations,
)

LIST_LIMIT = 100
"""Up to this many messages every one gets a line; above it only mismatches do."""
RETRIES = 3
"""Extra attempts for a request whose connection failed (never for an HTTP answer)."""


def _plan(rng: random.Random, journeys: Sequence[Journey], count: int) -> list[Journey]:
    """``count`` journeys in proportion to their weights (largest remainder), in a
    random order: a stream of a dozen messages already has each kind of failure."""
    total = sum(journey.weight for journey in journeys)
    quotas = [count * journey.weight / total for journey in journeys]
    counts = [int(quota) for quota in quotas]
    by_remainder = sorted(range(len(journeys)), key=lambda i: counts[i] - quotas[i])
    for i in by_remainder[: count - sum(counts)]:
        counts[i] += 1
    plan = [journey for journey, n in zip(journeys, counts, strict=True) for _ in range(n)]
    rng.shuffle(plan)
    return plan


@dataclass
class Message:
    """One simulated message: its reports' factories, in provider-time order."""

    index: int
    builds: list[Build] = field(default_factory=list)


# --------------------------------------------------------------------------- the stream


@dataclass(frozen=True)
class Item:
    """One request of the stream: which message, and how to build it afresh."""

    message: int
    build: Build


@dataclass
class Expected:
    provider_message_id: str
    state: MessageState


def expectations(
    ctx: Context, messages: Sequence[Message], received_at: datetime
) -> list[Expected]:
    """Each message's expected final state: its reports parsed by the configured
    provider and merged with the one merge rule (each event id once)."""
    result = []
    for message in messages:
        reports: list[Report] = []
        for build in message.builds:
            inbound = InboundRequest.captured(build(), ctx.public_base_url, received_at)
            reports += ctx.provider.parse(inbound)
        ids = {report.provider_message_id for report in reports}
        if len(ids) != 1:
            raise ReceiverError(f"simulated message {message.index} parsed as {sorted(ids)}")
        state = MessageState()
        seen: set[str] = set()
        for report in reports:
            if report.event_id not in seen:
                seen.add(report.event_id)
                state = merge(state, report).state
        result.append(Expected(ids.pop(), state))
    return result


def generate(
    simulation: Simulation,
    ctx: Context,
    *,
    messages: int,
    duplicates: float,
    shuffle: bool,
    seed: int,
    start: datetime,
) -> tuple[list[Message], list[Item]]:
    """The messages and the stream of requests to post (duplicates and order applied)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    made: list[Message] = []
    timed: list[tuple[datetime, int, int, Build]] = []
    sent_at = start
    for index, journey in enumerate(_plan(rng, simulation.journeys, messages)):
        sent_at += timedelta(milliseconds=rng.randint(50, 2000))
        message = Message(index, simulation.message(rng, ctx, index, journey, sent_at))
        made.append(message)
        for order, build in enumerate(message.builds):
            timed.append((sent_at + timedelta(seconds=order), index, order, build))
    # Natural order: as the provider would send them, by message then report.
    timed.sort(key=lambda entry: (entry[0], entry[1], entry[2]))
    stream: list[Item] = []
    for _, index, _, build in timed:
        stream.append(Item(index, build))
        if rng.random() < duplicates:
            stream.append(Item(index, build))  # a redelivery (freshly signed, same report)
    if shuffle:
        rng.shuffle(stream)
    return made, stream


# --------------------------------------------------------------------------- HTTP


@dataclass
class PostResult:
    codes: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    counted: int = 0
    """Answers that carried the contract's counts (Jasmin's ``ACK/Jasmin`` does not)."""
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(n for code, n in self.codes.items() if not code.startswith("2"))


async def _post_one(client: httpx.AsyncClient, item: Item, result: PostResult) -> None:
    for attempt in range(RETRIES + 1):
        request = item.build()  # signed now, so time-limited signatures are fresh
        try:
            answer = await client.request(
                request.method, request.path, content=request.body, headers=request.headers
            )
        except httpx.TransportError as exc:
            if attempt < RETRIES:
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            result.codes["connection-failed"] += 1
            result.problems.append(f"{request.method} {request.path.split('?')[0]}: {exc!r}")
            return
        result.codes[str(answer.status_code)] += 1
        if answer.is_success:
            if answer.headers.get("content-type", "").startswith("application/json"):
                counts = answer.json()
                result.counted += 1
                for kind in ("applied", "duplicates", "superseded"):
                    result.outcomes[kind] += int(counts.get(kind, 0))
        else:
            detail = answer.text.strip().replace("\n", " ")[:200]
            result.problems.append(f"message #{item.message}: HTTP {answer.status_code} {detail}")
        return


Job = Callable[[], Awaitable[None]]


async def _run_pool(jobs: Sequence[Job], concurrency: int) -> None:
    queue: asyncio.Queue[Job] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker() -> None:
        while not queue.empty():
            job = queue.get_nowait()
            await job()

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(jobs))))))


async def post_stream(base_url: str, stream: Sequence[Item], concurrency: int) -> PostResult:
    result = PostResult()
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        await _run_pool(
            [functools.partial(_post_one, client, item, result) for item in stream], concurrency
        )
    return result


@dataclass
class Verdict:
    got: str | None = None
    error_code: str | None = None
    problem: str | None = None


async def verify(
    base_url: str, token: str, provider: str, expected: Sequence[Expected], concurrency: int
) -> list[Verdict]:
    """Every message's stored status, looked up by provider message id."""
    verdicts = [Verdict() for _ in expected]
    headers = {"authorization": f"Bearer {token}"}

    async def look(client: httpx.AsyncClient, index: int) -> None:
        params = {"provider": provider, "provider_message_id": expected[index].provider_message_id}
        try:
            answer = await client.get("/v1/messages", params=params)
        except httpx.TransportError as exc:
            verdicts[index].problem = f"lookup failed: {exc!r}"
            return
        if not answer.is_success:
            detail = answer.text.strip().replace("\n", " ")[:200]
            verdicts[index].problem = f"lookup answered HTTP {answer.status_code} {detail}"
            return
        items = answer.json().get("items", [])
        if not items:
            verdicts[index].problem = "not found"
            return
        verdicts[index].got = items[0].get("status")
        verdicts[index].error_code = items[0].get("error_code")

    async with httpx.AsyncClient(base_url=base_url, timeout=30, headers=headers) as client:
        await _run_pool(
            [functools.partial(look, client, i) for i in range(len(expected))], concurrency
        )
    return verdicts


# --------------------------------------------------------------------------- command


def _context(config: Config, args: argparse.Namespace) -> tuple[Simulation, Context]:
    provider = config.providers.get(args.provider)
    if provider is None:
        known = ", ".join(sorted(config.providers)) or "none"
        raise ConfigError(
            str(config.source), f"providers.{args.provider}", f"is not configured (known: {known})"
        )
    simulation = simulations().get(provider.kind)
    if simulation is None:
        raise UsageError(f"provider type {provider.kind!r} cannot be simulated")
    public = config.settings.public_base_url
    configured = provider.config.secrets
    try:
        private_key = simulation.private_key(args.telnyx_private_key, provider)
    except SimulationError as exc:
        raise UsageError(str(exc)) from None
    ctx = Context(
        provider=provider,
        secret=configured[0] if configured else simulation.placeholder_secret,
        public_base_url=(str(public) if public is not None else args.url).rstrip("/"),
        private_key=private_key,
    )
    return simulation, ctx


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


_START_YEARS = range(2000, 2099)
"""``--start`` years: SMPP receipts and Vonage's ``scts`` write two-digit years, and a
stream runs on for days after its start."""


def _start(text: str) -> datetime:
    try:
        moment = parse_iso(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} {exc}") from None
    if moment.year not in _START_YEARS:
        first, last = _START_YEARS[0], _START_YEARS[-1]
        raise argparse.ArgumentTypeError(
            f"{text!r} must be in the years {first}-{last} (SMPP receipts write two-digit years)"
        )
    return moment


def _describe(state: MessageState) -> str:
    status = state.status.value if state.status else "-"
    return f"{status} ({state.error_code})" if state.error_code else status


def _counts(posted: PostResult) -> str:
    """The answers' outcome counts (applied vs superseded depends on arrival order)."""
    if not posted.counted:
        return "; reports not counted (the provider's answers carry no counts)"
    outcomes = posted.outcomes
    return (
        f"; outcomes applied {outcomes['applied']}, superseded {outcomes['superseded']},"
        f" duplicates {outcomes['duplicates']}"
    )


def run(args: argparse.Namespace) -> int:
    config = load_existing(args.config)
    simulation, ctx = _context(config, args)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    start = args.start or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    messages, stream = generate(
        simulation,
        ctx,
        messages=args.messages,
        duplicates=args.duplicates,
        shuffle=args.shuffle,
        seed=seed,
        start=start,
    )
    expected = expectations(ctx, messages, start)
    base_url = args.url.rstrip("/")
    print(
        f"simulate: provider {ctx.name} ({ctx.provider.kind}), seed {seed}, "
        f"{len(messages)} messages, {len(stream)} requests "
        f"({len(stream) - sum(len(m.builds) for m in messages)} duplicates)"
        + (", shuffled" if args.shuffle else ""),
        flush=True,
    )
    posted = asyncio.run(post_stream(base_url, stream, args.concurrency))
    verdicts: list[Verdict] | None = None
    if args.verify_token:
        verdicts = asyncio.run(
            verify(base_url, args.verify_token, ctx.name, expected, args.concurrency)
        )
    mismatches = 0
    list_all = len(expected) <= LIST_LIMIT
    for index, want in enumerate(expected):
        line = f"{want.provider_message_id}\texpected {_describe(want.state)}"
        bad = False
        if verdicts is not None:
            verdict = verdicts[index]
            wanted_status = want.state.status.value if want.state.status else None
            if verdict.problem is not None:
                bad, line = True, f"{line}\tMISMATCH: {verdict.problem}"
            elif verdict.got != wanted_status or verdict.error_code != want.state.error_code:
                got = f"{verdict.got or '-'}" + (
                    f" ({verdict.error_code})" if verdict.error_code else ""
                )
                bad, line = True, f"{line}\tMISMATCH: stored {got}"
            else:
                line += "\tok"
        mismatches += bad
        if list_all or bad:
            print(line)
    for problem in posted.problems[:20]:
        print(f"error: {problem}")
    if len(posted.problems) > 20:
        print(f"error: ... and {len(posted.problems) - 20} more")
    finals = Counter(_describe(MessageState(status=e.state.status)) for e in expected)
    print(
        "summary: answers "
        + ", ".join(f"{code} x{n}" for code, n in sorted(posted.codes.items()))
        + _counts(posted)
        + "; expected "
        + ", ".join(f"{status} {n}" for status, n in sorted(finals.items()))
    )
    if verdicts is not None:
        matched = len(expected) - mismatches
        print(f"verify: {matched} of {len(expected)} messages match, {mismatches} mismatches")
    return 1 if posted.failed or mismatches else 0


def add_commands(commands: Any, *, config_help: str) -> None:
    """Register this module's subcommands on the CLI's subparsers."""
    parser = commands.add_parser(
        "simulate",
        help="post a realistic, signed report stream for one configured provider",
        description=(
            "Post a realistic, correctly signed stream of delivery reports for the "
            "configured provider NAME, print each message's expected final status and, "
            "with --verify-token, check it against the staff API (exit 1 on a mismatch "
            "or a non-2xx answer)."
        ),
    )
    parser.add_argument("--url", required=True, help="the receiver's base URL to post to")
    parser.add_argument("--provider", required=True, metavar="NAME", help="a configured provider")
    parser.add_argument("--messages", required=True, type=_positive, metavar="N")
    parser.add_argument(
        "--duplicates",
        type=_fraction,
        default=0.0,
        metavar="F",
        help="fraction of reports sent twice (0-1, default 0)",
    )
    parser.add_argument(
        "--shuffle", action="store_true", help="send the whole stream in a random order"
    )
    parser.add_argument(
        "--seed", type=int, help="makes the stream reproducible (default: random, printed)"
    )
    parser.add_argument(
        "--start",
        type=_start,
        help="ISO 8601 time of the first message's provider timestamps (default: today 00:00 UTC)",
    )
    parser.add_argument(
        "--verify-token", metavar="TOKEN", help="staff token: check every message's status"
    )
    parser.add_argument("--concurrency", type=_positive, default=8, metavar="C")
    parser.add_argument(
        "--telnyx-private-key",
        metavar="FILE",
        help="Ed25519 private key (PEM) to sign a telnyx stream with",
    )
    parser.add_argument("--config", help=config_help)
    parser.set_defaults(run=run)


__all__ = ["add_commands", "expectations", "generate", "run"]
