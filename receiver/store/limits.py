"""The rules of state every process on one database shares: rate limits and the
Idempotency-Keys in flight (schema version 12). Written once against ``Tx``.

A rate limit's state is the GCRA theoretical arrival time of its key (``rate_limits``);
the decision is ``receiver.core.ratelimit.Rate.decide``, sans-IO: a rule reads the TAT
(locked where the database locks rows), asks for the verdict and writes the new TAT in
the same transaction, so two processes counting one key at once are serialized.

A key in flight is a row of ``idempotency_claims``, claimed when the request starts;
``outbox.create_send`` deletes it in the transaction that commits the message and the
key's answer, and a request that fails releases it. A claim past its expiry (its
process died mid-request) may be taken over.
"""

from __future__ import annotations

from receiver.core.ratelimit import Rate, RateLimitDecision
from receiver.records import Admitted, KeyClaim
from receiver.store.base import to_text
from receiver.store.tx import Tx


async def take(tx: Tx, key: str, rate: Rate, now: int) -> RateLimitDecision:
    """Count one request of ``key`` at ``now`` (ns of the Unix epoch) if ``rate`` allows
    it; the verdict either way."""
    while True:
        locked = tx.dialect.lock("rate_limits")  # a constant of the dialect, not input
        tat = await tx.value(f"SELECT tat FROM rate_limits WHERE key = ?{locked}", (key,))  # noqa: S608
        decision, after = rate.decide(tat, now)
        if not decision.allowed:
            return decision
        if tat is not None:
            await tx.run("UPDATE rate_limits SET tat = ? WHERE key = ?", (after, key))
            return decision
        inserted = await tx.run(
            "INSERT INTO rate_limits (key, tat) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            (key, after),
        )
        if inserted:
            return decision
        # Another process counted the key's first request meanwhile: read it again.


async def claim_key(tx: Tx, claim: KeyClaim) -> bool:
    """Claim the key for ``claim``'s request; False while another request holds it."""
    taken = await tx.run(
        "INSERT INTO idempotency_claims (client_id, key, token, expires_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (client_id, key) DO UPDATE"
        " SET token = excluded.token, expires_at = excluded.expires_at"
        " WHERE idempotency_claims.expires_at <= ?",
        (claim.client_id, claim.key, claim.token, to_text(claim.expires_at), to_text(claim.now)),
    )
    return taken > 0


async def admit(tx: Tx, rate_key: str, rate: Rate, now: int, claim: KeyClaim | None) -> Admitted:
    """Count one request against ``rate_key``; when allowed, claim its key too (if any)."""
    decision = await take(tx, rate_key, rate, now)
    if not decision.allowed or claim is None:
        return Admitted(decision, False)
    return Admitted(decision, await claim_key(tx, claim))


async def settle_claim(tx: Tx, client_id: str, key: str, token: str) -> None:
    """Delete the claim on the key if ``token``'s request still holds it."""
    await tx.run(
        "DELETE FROM idempotency_claims WHERE client_id = ? AND key = ? AND token = ?",
        (client_id, key, token),
    )


async def prune_claims(tx: Tx, now: str) -> int:
    """Delete the claims expired at ``now`` (their requests' processes died); how many."""
    return await tx.run("DELETE FROM idempotency_claims WHERE expires_at <= ?", (now,))
