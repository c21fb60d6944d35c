"""Simulated participants: programs that take part in a study over its HTTP API as a page would
(join, fetch each episode, report each frame shown, judge, finish each round, wait for
training). For load tests and for sessions without a person (e.g. one with no feedback at all).

What does not live here: the app (:mod:`.server`); the browser tests drive the real page.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

import httpx

Judge = Callable[[dict], int]
"""A participant's judgement of one step (its record as the page gets it): 1, -1 or 0 (nothing)."""


def coins(step: dict) -> int:
    """Praise every step that reaches the coin; nothing otherwise."""
    return 1 if step["coin"] else 0


def silent(step: dict) -> int:
    """No feedback at all."""
    return 0


@dataclass
class Record:
    """What a simulated participant did: judgements acknowledged (id, episode, step, value) and the
    round trip of each judgement (seconds)."""

    session: int = -1
    acknowledged: list[tuple[int, int, int, int]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    rounds: int = 0


def take_part(base: str, participant: str, judge: Judge = coins, *, until: float | None = None,
              rounds: int | None = None, wait_training: bool = True, frame_s: float = 0.0,
              client: httpx.Client | None = None) -> Record:
    """Take part in the study at ``base`` until the session is done, ``rounds`` rounds are watched,
    or the clock passes ``until`` (``time.monotonic()``). Judgements carry a client id and are
    retried on a lost connection, as the page does."""
    own = client is None
    client = client or httpx.Client(base_url=base, timeout=60)
    rec = Record()
    try:
        s = _ok(client.post("/api/sessions", json={"participant": participant}))
        rec.session = sid = s["id"]
        while s["status"] != "done":
            if until is not None and time.monotonic() > until:
                break
            if s["status"] != "watching":
                if not wait_training:
                    break
                time.sleep(0.2)
                s = _ok(client.get(f"/api/sessions/{sid}"))
                if s.get("error"):
                    raise RuntimeError(f"session {sid} failed: {s['error']}")
                continue
            if rounds is not None and rec.rounds >= rounds:
                break
            per = s["episodes_per_round"]
            first = s["round"] * per
            start_e, start_t = max(s["shown"]["episode"], first), max(s["shown"]["step"], 0)
            stopped = False
            for e in range(start_e, first + per):
                ep = _ok(client.get(f"/api/sessions/{sid}/episodes/{e}"))
                for t in range(start_t if e == start_e else 0, len(ep["steps"])):
                    if until is not None and time.monotonic() > until:
                        stopped = True
                        break
                    _ok(client.post(f"/api/sessions/{sid}/shown", json={"episode": e, "step": t}))
                    shown_at = time.monotonic()
                    if frame_s:
                        time.sleep(frame_s)
                    v = judge(ep["steps"][t])
                    if v:
                        body = {"episode": e, "step": t, "value": v, "client_id": uuid.uuid4().hex,
                                "delay_ms": round(1000 * (time.monotonic() - shown_at), 1)}
                        t0 = time.perf_counter()
                        out = _retry(client, f"/api/sessions/{sid}/judgements", body)
                        rec.latencies.append(time.perf_counter() - t0)
                        rec.acknowledged.append((out["id"], e, t, v))
                if stopped:
                    break
            if stopped:
                break
            s = _ok(client.post(f"/api/sessions/{sid}/round-done"))
            rec.rounds += 1
        return rec
    finally:
        if own:
            client.close()


def _ok(r: httpx.Response) -> dict:
    if r.status_code >= 400:
        raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}")
    return r.json()


def _retry(client: httpx.Client, path: str, body: dict, tries: int = 5) -> dict:
    for i in range(tries):
        try:
            return _ok(client.post(path, json=body))
        except httpx.TransportError:
            if i == tries - 1:
                raise
            time.sleep(0.2 * (i + 1))
    raise AssertionError("unreachable")
