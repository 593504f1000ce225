"""Console logins under attack: the server's memory, and webhook latency beside it.

    python bench/login.py                    # 400 wrong passwords from 400 addresses
    python bench/login.py --attempts 20      # the burst one address may make

One ``receiver serve`` on loopback (``trusted_proxies = ["127.0.0.1/32"]``, so each
attempt names its own client address in ``X-Forwarded-For``) with one staff member who
has a password. Two phases, each sending ``--webhooks`` signed Standard Webhooks reports
at 50 a second, one at a time, timing each answer:

1. ``quiet``: nothing else happens;
2. ``attack``: waves of ``--attempts`` wrong-password logins, each from its own address
   and its own session (CSRF token fetched first), all posted at once, wave after wave
   until the webhooks are sent. The attacker is a process of its own at the lowest CPU
   priority, so on a small machine it takes the server's CPU no more than an attacker
   elsewhere would.

It prints the webhook p50/p99 of each phase, the logins' answers by status code, the
server's CPU time during the attack, and its RSS before, after and at its peak
(``VmRSS``/``VmHWM`` of /proc/PID/status). Figures are for docs/performance.md;
tests/chaos/test_login_flood.py runs the same flood and asserts the behaviour (memory
bound, 429s, every webhook stored) without timing anything.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from http.cookiejar import CookieJar, DefaultCookiePolicy
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

import httpx

from receiver.testing import standard_report, standard_request
from receiver.testing.pytest_plugin import ReceiverServer, write_config

PASSWORD = "bench-password-" + secrets.token_hex(8)
PACE = 0.02
"""Seconds between webhooks (50 a second)."""
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def memory_kib(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak RSS) of process ``pid``, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def cpu_seconds(pid: int) -> float:
    """User and system CPU time process ``pid`` has used (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def staff_with_password(server: ReceiverServer, name: str, password: str) -> None:
    """``receiver staff add NAME`` and ``receiver staff passwd NAME`` (stdin)."""
    server.staff_token(name, "viewer")
    command = [sys.executable, "-m", "receiver", "staff", "passwd", name]
    subprocess.run(  # our own CLI, our own arguments
        [*command, "--config", str(server.config_path)],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def attacker_client(base_url: str) -> httpx.AsyncClient:
    """A client for many sessions at once: it keeps no cookies (each attempt sends its
    own), opens as many connections as there are attempts and keeps none open after
    its answer (between waves they would meet the server's keep-alive timeout)."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    no_cookies = CookieJar(DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(base_url=base_url, limits=limits, cookies=no_cookies, timeout=120)


async def wrong_logins(
    client: httpx.AsyncClient, name: str, addresses: list[str]
) -> list[httpx.Response]:
    """One wrong-password login per address, all posted at once (each with its own
    session and CSRF token, fetched first); the answers."""

    async def session(address: str) -> tuple[str, str, str]:
        page = await client.get("/console/login", headers={"x-forwarded-for": address})
        match = _CSRF.search(page.text)
        assert match, page.text
        return address, page.headers["set-cookie"].split(";")[0], match[1]

    sessions = await asyncio.gather(*(session(a) for a in addresses))

    async def attempt(address: str, cookie: str, csrf: str) -> httpx.Response:
        form = {"csrf_token": csrf, "name": name, "password": "wrong-" + secrets.token_hex(6)}
        headers = {"x-forwarded-for": address, "cookie": cookie}
        return await client.post("/console/login", data=form, headers=headers)

    return await asyncio.gather(*(attempt(*s) for s in sessions))


async def send_webhooks(
    client: httpx.AsyncClient, secret: str, prefix: str, count: int
) -> tuple[list[float], Counter[int | str]]:
    """``count`` signed reports, one every ``PACE`` seconds as a provider sends them:
    each answer's seconds, and the answers by status (or transport error)."""
    seconds, statuses = [], Counter[int | str]()
    for i in range(count):
        request = standard_request(secret, standard_report(f"{prefix}-{i}", "delivered"))
        started = time.perf_counter()
        try:
            answer = await client.post(request.path, content=request.body, headers=request.headers)
        except httpx.TransportError as exc:
            statuses[type(exc).__name__] += 1
            continue
        seconds.append(time.perf_counter() - started)
        statuses[answer.status_code] += 1
        await asyncio.sleep(max(0.0, PACE - seconds[-1]))
    return seconds, statuses


def addresses(count: int, offset: int = 0) -> list[str]:
    """``count`` distinct client addresses in 10.0.0.0/8."""
    return [
        f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in range(offset, offset + count)
    ]


def attacker(base_url: str, attempts: int, stop: Event, results: Queue[Counter[int]]) -> None:
    """Waves of ``attempts`` wrong passwords, each from new addresses, until ``stop``.
    In a process of its own at the lowest priority, so that it slows neither the
    webhooks' client nor the server more than an attacker on another machine would."""
    os.nice(19)

    async def waves() -> Counter[int]:
        answers: Counter[int] = Counter()
        async with attacker_client(base_url) as client:
            wave = 0
            while not stop.is_set():
                wave_addresses = addresses(attempts, wave * attempts)
                answers += Counter(
                    a.status_code for a in await wrong_logins(client, "bench", wave_addresses)
                )
                wave += 1
        return answers

    results.put(asyncio.run(waves()))


async def measure(server: ReceiverServer, attempts: int, webhooks: int) -> None:
    assert server.process is not None
    pid, secret = server.process.pid, server.secret()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=120) as provider:
        await send_webhooks(provider, secret, "warm", 50)
        before = memory_kib(pid)
        quiet, quiet_statuses = await send_webhooks(provider, secret, "quiet", webhooks)

        stop, results = multiprocessing.Event(), multiprocessing.Queue()
        attack = multiprocessing.Process(
            target=attacker, args=(server.base_url, attempts, stop, results)
        )
        cpu_before = cpu_seconds(pid)
        attack.start()
        await asyncio.sleep(1)  # the first wave is under way
        attacked, attacked_statuses = await send_webhooks(provider, secret, "attack", webhooks)
        stop.set()
        logins = results.get()
        attack.join()
        cpu = cpu_seconds(pid) - cpu_before
    after = memory_kib(pid)

    def ms(values: list[float], q: int) -> str:
        return f"{statistics.quantiles(values, n=100)[q - 1] * 1000:.1f} ms"

    for phase, values, statuses in (
        ("quiet", quiet, quiet_statuses),
        ("attack", attacked, attacked_statuses),
    ):
        print(f"webhooks, {phase}: p50 {ms(values, 50)}, p99 {ms(values, 99)}, {dict(statuses)}")
    print(f"logins, {attempts} at a time: answers {dict(sorted(logins.items()))}")
    attempted = sum(logins.values())
    print(f"server CPU in the attack: {cpu:.1f} s, {cpu / attempted * 1000:.2f} ms per attempt")
    print(
        f"server RSS: {before['VmRSS'] / 1024:.0f} MiB before, "
        f"{after['VmRSS'] / 1024:.0f} MiB after, peak {after['VmHWM'] / 1024:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=400, help="logins per wave (default 400)")
    parser.add_argument("--webhooks", type=int, default=400, help="reports per phase (default 400)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        config = write_config(workdir, {"trusted_proxies": ["127.0.0.1/32"]})
        server = ReceiverServer(workdir, config).start()
        try:
            staff_with_password(server, "bench", PASSWORD)
            asyncio.run(measure(server, args.attempts, args.webhooks))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
