"""How many grading requests may be in flight: a bound that backs off on rate limits (AIMD)."""

from __future__ import annotations

import asyncio
import time



class AdaptiveLimiter:
    """At most `int(limit)` in flight, `limit` <= maximum. Multiplicative decrease on a rate
    limit (at most once per Retry-After window, so one storm counts once), additive increase
    of 1/limit per success. Single event loop, no await between check and take: no races."""

    def __init__(self, maximum: int):
        self.maximum = maximum
        self.limit = float(maximum)
        self.min_limit = float(maximum)
        self.in_flight = 0
        self.peak_in_flight = 0
        self.rate_limits = 0  # 429 replies seen
        self.decreases = 0
        self.paused_until = 0.0
        self._last_cut = -1e9
        self._freed = asyncio.Event()

    async def acquire(self) -> None:
        while True:
            delay = self.paused_until - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            if self.in_flight < max(1, int(self.limit)):
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                return
            self._freed.clear()
            await self._freed.wait()

    def release(self, *, ok: bool = True) -> None:
        self.in_flight -= 1
        if ok and self.limit < self.maximum:
            self.limit = min(self.maximum, self.limit + 1.0 / self.limit)
        self._freed.set()

    def on_rate_limit(self, wait_s: float | None) -> None:
        now = time.monotonic()
        wait = max(0.0, float(wait_s or 0.0))
        self.rate_limits += 1
        self.paused_until = max(self.paused_until, now + wait)
        if now - self._last_cut >= max(1.0, wait):
            self._last_cut = now
            self.limit = max(1.0, self.limit / 2)
            self.min_limit = min(self.min_limit, self.limit)
            self.decreases += 1
