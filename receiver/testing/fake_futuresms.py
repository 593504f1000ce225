"""A fake FutureSMS Merchant API for tests: a real HTTP server on loopback that behaves
as FutureSMS documents (www.futuresms.net, read 2026-12), faults included.

    with FakeFutureSms() as fake:
        fake.on_send_to("+639171230001", Drop())  # takes that order, then drops the answer
        # configure a ``futuresms`` provider with fake.config_keys(), and send through it
        fake.wait_for_orders(1)
        assert len(fake.orders) == 1 and fake.counts.conflicts == 1  # the retry got CONFLICT

What it does, page by page:

- Authentication: ``POST /api/v1/auth/login`` (``username``, ``password``) issues a token
  pair; ``POST /api/v1/auth/refresh`` (``refresh_token``) rotates it: the refresh token
  is spent, a spent one is refused (401), and the session's old access token stops
  working. Every other route wants ``Authorization: Bearer <access_token>`` and answers
  401 ``UNAUTHORIZED``/``TOKEN_EXPIRED`` to an expired or replaced one.
  ``expire_access_tokens()`` ends every access token early, as a clock ahead of ours
  does; ``end_sessions()`` ends the refresh tokens too, as a logout does.
- Send SMS: ``POST /api/v1/sms/sends`` checks the documented field rules (422
  ``VALIDATION_ERROR`` naming the field) and answers 202 with ``data.order_id``.
- Idempotency: a ``client_order_id`` it already has is answered 409 with the documented
  conflict body, and nothing else happens.
- Track Messages: ``GET /api/v1/sms/orders/{order_id}``; 404 for an unknown order.
- Delivery Reports: after taking an order it posts each of ``dlr_statuses`` to the
  order's ``dlr_address`` (JSON, with ``client_order_id``), up to 3 attempts each while
  the answer is not a 2xx.

Where the pages are silent, it makes a documented guess: the token answer's expiry
fields are ``access_token_expires_at`` and ``refresh_token_expires_at``; a 429 carries
``Retry-After``; the refresh body is ``{"refresh_token": ...}``.

Faults, per call: ``on_send`` (the next send calls) or ``on_send_to`` (the next send
calls for one phone number) with ``Drop`` (take the order, drop the answer), ``Stall``,
``Fail`` (5xx; ``record``: after taking the order), ``Throttle`` (429) and ``Reject``
(a 4xx error envelope); ``on_lookup`` for lookups.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx

from receiver.testing.fake_server import (
    Answer,
    Behaviour,
    Drop,
    Fail,
    FakeRequest,
    FakeServer,
    Reject,
    Stall,
    Throttle,
)
from receiver.testing.futuresms import futuresms_report, futuresms_time

T = TypeVar("T")
DLR_ATTEMPTS = 3
"""Delivery Reports page: "by default, FutureSMS makes up to 3 total attempts"."""
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_ORDER_PATH = re.compile(r"/api/v1/sms/orders/([^/]+)")


@dataclass(frozen=True)
class FakeOrder:
    """An order the fake took: a message that really goes out."""

    order_id: str
    client_order_id: str | None
    phone_number: str
    template_id: str
    sender_id: str
    var: str | None
    dlr_address: str | None
    created_at: datetime
    message_status: str | None = None


@dataclass(frozen=True)
class SendCall:
    """One ``POST /api/v1/sms/sends`` that got past authentication, whatever it got."""

    client_order_id: str | None
    phone_number: str | None


@dataclass(frozen=True)
class DlrPost:
    """One attempt at posting a DLR: the answer's status, or None if none came."""

    order_id: str
    message_status: str
    attempt: int
    status_code: int | None


@dataclass
class _Session:
    access: str
    access_expires: datetime
    refresh: str
    refresh_expires: datetime
    used: bool = False
    """Whether a request has presented its access token."""


@dataclass
class Counts:
    """What the fake has seen, besides its orders and calls."""

    logins: int = 0
    refreshes: int = 0
    refused_refreshes: int = 0
    expired_tokens: int = 0
    """401s to a request whose access token had expired or been replaced."""
    conflicts: int = 0
    """Sends answered CONFLICT."""
    lookups: int = 0


class FakeFutureSms(FakeServer):
    """The fake; ``start()`` (or ``with``) serves it on ``base_url``."""

    def __init__(
        self,
        *,
        username: str = "api-user",
        password: str = "fake-password",  # noqa: S107 - a fake's credential
        access_ttl: timedelta = timedelta(minutes=15),
        refresh_ttl: timedelta = timedelta(days=1),
        dlr_statuses: tuple[str, ...] = ("DELIVRD",),
        dlr_delay: float = 0.05,
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.username, self.password = username, password
        self.access_ttl, self.refresh_ttl = access_ttl, refresh_ttl
        self.dlr_statuses, self.dlr_delay = dlr_statuses, dlr_delay
        self.counts = Counts()
        self._sessions: list[_Session] = []
        self._orders: dict[str, FakeOrder] = {}
        self._by_client_order_id: dict[str, str] = {}
        self._send_calls: list[SendCall] = []
        self._dlr_posts: list[DlrPost] = []
        self._per_number: dict[str, deque[Behaviour]] = defaultdict(deque)
        self._ids = itertools.count(1)

    def config_keys(self) -> dict[str, str]:
        """The keys of a ``[providers.NAME]`` table that send through this fake."""
        return {
            "api_base_url": self.base_url,
            "username": self.username,
            "password": self.password,
            "sender": "SID-1",
        }

    # ------------------------------------------------------------------ scripting

    def on_send_to(self, phone_number: str, *behaviours: Behaviour) -> None:
        """How to treat the next send calls for ``phone_number``; then normally."""
        with self.lock:
            self._per_number[phone_number].extend(behaviours)

    def unused_sessions(self) -> int:
        """Token pairs issued whose access token no request ever presented: answers to a
        login or refresh that the client never read (it timed out), so it had to log in
        again."""
        with self.lock:
            return sum(not session.used for session in self._sessions)

    def expire_access_tokens(self) -> None:
        """End every access token now, before the expiry it was issued with."""
        with self.lock:
            past = datetime.now(UTC) - timedelta(seconds=1)
            self._sessions = [replace(s, access_expires=past) for s in self._sessions]

    def end_sessions(self) -> None:
        """End every session now (a logout, a password change): its access and refresh
        tokens are refused, and only a new login gets through."""
        with self.lock:
            self._sessions = []

    # ------------------------------------------------------------------ observing

    def _snapshot(self, items: Iterable[T]) -> list[T]:
        with self.lock:
            return list(items)

    @property
    def orders(self) -> list[FakeOrder]:
        """Every order taken, in order: what really went out to handsets."""
        return self._snapshot(self._orders.values())

    @property
    def send_calls(self) -> list[SendCall]:
        """Every send call that got past authentication, in order."""
        return self._snapshot(self._send_calls)

    @property
    def dlr_posts(self) -> list[DlrPost]:
        """Every attempt at posting a DLR, in order."""
        return self._snapshot(self._dlr_posts)

    def order_for(self, client_order_id: str) -> FakeOrder:
        """The order taken under ``client_order_id``; KeyError if there is none."""
        with self.lock:
            return self._orders[self._by_client_order_id[client_order_id]]

    def wait_for_orders(self, count: int, timeout: float = 20.0) -> None:
        self.wait_until(lambda: len(self._orders) >= count, f"{count} orders", timeout)

    def wait_for_reports(self, count: int, timeout: float = 20.0) -> None:
        """Block until ``count`` DLRs were answered with a 2xx."""
        self.wait_until(
            lambda: sum(_ok(post) for post in self._dlr_posts) >= count,
            f"{count} delivery reports acknowledged",
            timeout,
        )

    def report(self, order_id: str, message_status: str) -> httpx.Response:
        """Post one DLR for ``order_id`` to its ``dlr_address`` now, from the caller's
        thread (as FutureSMS does when a delivery report is matched to the order)."""
        with self.lock:
            order = self._orders[order_id]
        if order.dlr_address is None:
            raise ValueError(f"order {order_id} has no dlr_address")
        response = httpx.post(order.dlr_address, json=self._dlr(order, message_status))
        with self.lock:
            self._record_dlr(order, message_status, 1, response.status_code)
        return response

    # ------------------------------------------------------------------ answering

    async def answer(self, request: FakeRequest) -> Answer | None:
        if request.method == "POST" and request.path == "/api/v1/auth/login":
            return self._login(request)
        if request.method == "POST" and request.path == "/api/v1/auth/refresh":
            return self._refresh(request)
        refused = self._authenticate(request)
        if refused is not None:
            return refused
        if request.method == "POST" and request.path == "/api/v1/sms/sends":
            return await self._send(request)
        found = _ORDER_PATH.fullmatch(request.path)
        if request.method == "GET" and found:
            return await self._lookup(request, found[1])
        return _error(404, "NOT_FOUND", "Not Found", "no such route", request)

    def _login(self, request: FakeRequest) -> Answer:
        body = _json_object(request)
        if body.get("username") != self.username or body.get("password") != self.password:
            return _error(
                401,
                "UNAUTHORIZED",
                "Unauthorized",
                "bad credentials",
                request,
                reason="INVALID_CREDENTIALS",
            )
        with self.lock:
            self.counts.logins += 1
            return self._issue(None)

    def _refresh(self, request: FakeRequest) -> Answer:
        token = _json_object(request).get("refresh_token")
        now = datetime.now(UTC)
        with self.lock:
            session = next((s for s in self._sessions if s.refresh == token), None)
            if session is None or now >= session.refresh_expires:
                self.counts.refused_refreshes += 1
                return _error(
                    401,
                    "UNAUTHORIZED",
                    "Unauthorized",
                    "refresh token is invalid, expired or already used",
                    request,
                    reason="TOKEN_EXPIRED",
                )
            self.counts.refreshes += 1
            return self._issue(session)

    def _issue(self, session: _Session | None) -> Answer:
        """A fresh token pair (replacing ``session``'s). Call with the lock held."""
        now = datetime.now(UTC)
        if session is not None:
            self._sessions.remove(session)
        fresh = _Session(
            access=secrets.token_urlsafe(24),
            access_expires=now + self.access_ttl,
            refresh=secrets.token_urlsafe(24),
            refresh_expires=now + self.refresh_ttl,
        )
        self._sessions.append(fresh)
        data = {
            "access_token": fresh.access,
            "refresh_token": fresh.refresh,
            "token_type": "Bearer",
            "access_token_expires_at": futuresms_time(fresh.access_expires),
            "refresh_token_expires_at": futuresms_time(fresh.refresh_expires),
        }
        return 200, {}, {"message": "OK", "details": None, "data": data, "meta": None}

    def _authenticate(self, request: FakeRequest) -> Answer | None:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ")
        now = datetime.now(UTC)
        with self.lock:
            for session in self._sessions:
                if session.access == token and now < session.access_expires:
                    session.used = True
                    return None
            if header.startswith("Bearer "):
                self.counts.expired_tokens += 1
        return _error(
            401,
            "UNAUTHORIZED",
            "Unauthorized",
            "access token expired or invalid",
            request,
            reason="TOKEN_EXPIRED",
        )

    async def _send(self, request: FakeRequest) -> Answer | None:
        body = _json_object(request)
        problem = _invalid_field(body)
        number = body.get("phone_number")
        client_order_id = body.get("client_order_id")
        if isinstance(client_order_id, str):
            client_order_id = client_order_id.strip()
        with self.lock:
            self._send_calls.append(SendCall(client_order_id, number))
            self.lock.notify_all()
            queue = self._per_number.get(number) if isinstance(number, str) else None
            behaviour = queue.popleft() if queue else self.next_behaviour("send")
            if refused := _refusal(behaviour, request):
                return refused
            if problem is not None:
                return _error(422, "VALIDATION_ERROR", "Validation failed", problem, request)
            if client_order_id is not None and client_order_id in self._by_client_order_id:
                self.counts.conflicts += 1
                details = "client_order_id already exists for this merchant"
                return _error(409, "CONFLICT", "Conflict", details, request)
            order = self._take(body, client_order_id)
        data = {
            "order_id": order.order_id,
            "order_status": "pending",
            "message_status": None,
            "created_at": futuresms_time(order.created_at),
        }
        accepted = {"message": "Accepted", "details": None, "data": data, "meta": None}
        return await self._finish(behaviour, request, (202, {}, accepted))

    def _take(self, body: dict[str, Any], client_order_id: str | None) -> FakeOrder:
        """Create the order and schedule its DLRs. Call with the lock held."""
        now = datetime.now(UTC)
        order = FakeOrder(
            order_id=f"SDPS{now:%y%m%d%H%M%S}{next(self._ids):07d}",
            client_order_id=client_order_id,
            phone_number=body["phone_number"],
            template_id=body["template_id"],
            sender_id=body["sender_id"],
            var=body.get("var"),
            dlr_address=body.get("dlr_address"),
            created_at=now,
        )
        self._orders[order.order_id] = order
        if client_order_id is not None:
            self._by_client_order_id[client_order_id] = order.order_id
        self.lock.notify_all()
        if order.dlr_address is not None and self.dlr_statuses:
            self.spawn(self._post_reports(order))
        return order

    async def _post_reports(self, order: FakeOrder) -> None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            for status in self.dlr_statuses:
                await asyncio.sleep(self.dlr_delay)
                for attempt in range(1, DLR_ATTEMPTS + 1):
                    code: int | None
                    try:
                        answer = await client.post(
                            str(order.dlr_address), json=self._dlr(order, status)
                        )
                        code = answer.status_code
                    except httpx.HTTPError:
                        code = None
                    with self.lock:
                        self._record_dlr(order, status, attempt, code)
                    if code is not None and 200 <= code < 300:
                        break
                    await asyncio.sleep(self.dlr_delay)

    def _dlr(self, order: FakeOrder, status: str) -> dict[str, Any]:
        return futuresms_report(
            order.order_id,
            status,
            client_order_id=order.client_order_id,
            phone_number=order.phone_number,
            sender_value=order.sender_id,
        )

    def _record_dlr(self, order: FakeOrder, status: str, attempt: int, code: int | None) -> None:
        """Call with the lock held."""
        self._dlr_posts.append(DlrPost(order.order_id, status, attempt, code))
        if code is not None and 200 <= code < 300:
            self._orders[order.order_id] = replace(
                self._orders[order.order_id], message_status=status
            )
        self.lock.notify_all()

    async def _lookup(self, request: FakeRequest, order_id: str) -> Answer | None:
        with self.lock:
            behaviour = self.next_behaviour("lookup")
            self.counts.lookups += 1
            order = self._orders.get(order_id)
        if refused := _refusal(behaviour, request):
            return refused
        if order is None:
            return _error(404, "NOT_FOUND", "Not Found", "order not found", request)
        data = {
            "order_id": order.order_id,
            "client_order_id": order.client_order_id,
            "order_status": "pending" if order.message_status is None else "charged",
            "message_status": order.message_status,
            "phone_number": order.phone_number,
            "sender_value": order.sender_id,
            "content": f"template {order.template_id}: {order.var or ''}".strip(),
            "merchant_price_usd": "0.000000",
            "dlr_address": order.dlr_address,
            "dlr_available": order.message_status is not None,
            "created_at": futuresms_time(order.created_at),
            "updated_at": futuresms_time(datetime.now(UTC)),
        }
        found = {"message": "OK", "details": None, "data": data, "meta": None}
        return await self._finish(behaviour, request, (200, {}, found))

    async def _finish(
        self, behaviour: Behaviour | None, request: FakeRequest, answer: Answer
    ) -> Answer | None:
        """``answer``, after the faults that strike once the work is done: a 5xx
        (``Fail(record=True)``), no answer (``Drop``), a late one (``Stall``)."""
        if isinstance(behaviour, Fail):
            return _server_error(behaviour.status, request)
        if isinstance(behaviour, Drop):
            return None
        if isinstance(behaviour, Stall):
            await self.stall(behaviour)
        return answer


def _refusal(behaviour: Behaviour | None, request: FakeRequest) -> Answer | None:
    """The answer of a fault that takes nothing: 429 (``Throttle``), the scripted 4xx
    (``Reject``), a 5xx (``Fail`` without ``record``); None for the others."""
    if isinstance(behaviour, Throttle):
        status, _, body = _error(
            429, "TOO_MANY_REQUESTS", "Too Many Requests", "rate limit exceeded", request
        )
        return status, {"retry-after": behaviour.retry_after}, body
    if isinstance(behaviour, Reject):
        return _error(behaviour.status, behaviour.code, "Rejected", behaviour.message, request)
    if isinstance(behaviour, Fail) and not behaviour.record:
        return _server_error(behaviour.status, request)
    return None


def _server_error(status: int, request: FakeRequest) -> Answer:
    return _error(status, "INTERNAL_SERVER_ERROR", "Internal Server Error", "fault", request)


def _ok(post: DlrPost) -> bool:
    return post.status_code is not None and 200 <= post.status_code < 300


def _json_object(request: FakeRequest) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _invalid_field(body: dict[str, Any]) -> str | None:
    """The Send SMS page's field rules; the first broken one, in words."""

    def text(name: str) -> str | None:
        value = body.get(name)
        return value if isinstance(value, str) else None

    number, template_id, sender_id = text("phone_number"), text("template_id"), text("sender_id")
    var, reference, address = body.get("var"), body.get("client_order_id"), body.get("dlr_address")
    if number is None or len(number) > 32 or not _E164.fullmatch(number):
        return "phone_number must be E.164, at most 32 characters"
    if template_id is None or not 4 <= len(template_id) <= 16:
        return "template_id must have 4-16 characters"
    if not sender_id:
        return "sender_id is required"
    if var is not None and (not isinstance(var, str) or len(var) > 24):
        return "var must be a string of at most 24 characters"
    if reference is not None and (
        not isinstance(reference, str) or not 12 <= len(reference.strip()) <= 128
    ):
        return "client_order_id must have 12-128 characters after trimming"
    if address is not None and (not isinstance(address, str) or len(address) > 255):
        return "dlr_address must have at most 255 characters"
    return None


def _error(
    status: int,
    code: str,
    message: str,
    details: str,
    request: FakeRequest,
    *,
    reason: str | None = None,
) -> Answer:
    """The error envelope of the Response Envelope page."""
    return (
        status,
        {},
        {
            "error_code": code,
            "reason": reason,
            "message": message,
            "details": details,
            "path": request.path,
            "timestamp": futuresms_time(datetime.now(UTC)),
            "request_id": f"req_{secrets.token_hex(8)}",
        },
    )


__all__ = [
    "DLR_ATTEMPTS",
    "Counts",
    "DlrPost",
    "FakeFutureSms",
    "FakeOrder",
    "SendCall",
]
