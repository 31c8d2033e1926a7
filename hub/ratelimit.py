"""The one rate limiter: sliding windows of hits per key, for sign-ins and residents' reports.

Runs in whichever thread asks (API worker threads, the pages' thread pool): every method
takes the one lock. Memory stays bounded whatever arrives: at most ``max_keys`` keys (the
least recently seen forgotten first, and a key whose hits have all left the window as soon
as another key is counted), each with at most ``limit`` stamps, and at most ``global_limit``
stamps for all keys together.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

#: Keys remembered at most by default: a few hundred KiB whoever sends.
MAX_KEYS = 4096


class RateLimiter:
    """``limit`` hits per key in any ``window_s`` seconds (and ``global_limit`` for all keys
    together, when given) on ``clock``, a monotonic clock in seconds.

    Each method takes ``now`` for callers that read the clock once for several calls
    (and for tests); without it the limiter reads ``clock``.
    """

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        global_limit: int | None = None,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window_s <= 0 or max_keys < 1:
            raise ValueError("a rate limit needs limit >= 1, window_s > 0 and max_keys >= 1")
        self.limit, self.window_s, self.max_keys = limit, window_s, max_keys
        self.global_limit = global_limit
        self._clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._all: deque[float] = deque(maxlen=global_limit)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._hits)

    def hit(self, key: str, now: float | None = None) -> float:
        """Count a hit and return 0, or return the seconds to wait (nothing counted)."""
        now = self._clock() if now is None else now
        with self._lock:
            wait = self._wait(key, now)
            if wait == 0.0:
                self._record(key, now)
            return wait

    def wait(self, key: str, now: float | None = None) -> float:
        """The seconds until ``key`` may try again (0 if it may now); nothing counted."""
        now = self._clock() if now is None else now
        with self._lock:
            return self._wait(key, now)

    def add(self, key: str, now: float | None = None) -> None:
        """Count a hit whatever the limit says (a failed sign-in counts even so)."""
        now = self._clock() if now is None else now
        with self._lock:
            self._record(key, now)

    def take_back(self, key: str, stamp: float) -> None:
        """Uncount the hit counted for ``key`` at ``stamp`` (an attempt counted before it was
        judged, that turned out right or was never judged)."""
        with self._lock:
            q = self._hits.get(key)
            if q is not None and stamp in q:
                q.remove(stamp)
            if self.global_limit is not None and stamp in self._all:
                self._all.remove(stamp)

    def reset(self, key: str) -> None:
        """Forget ``key``'s hits (a sign-in that succeeded)."""
        with self._lock:
            self._hits.pop(key, None)

    def _wait(self, key: str, now: float) -> float:
        edge = now - self.window_s
        q = self._hits.get(key)
        if q is not None:
            # Asking is being seen: a sender kept waiting is not forgotten before others.
            self._hits.move_to_end(key)
            while q and q[0] <= edge:
                q.popleft()
            if len(q) >= self.limit:
                return q[0] + self.window_s - now
        if self.global_limit is None:
            return 0.0
        while self._all and self._all[0] <= edge:
            self._all.popleft()
        if len(self._all) >= self.global_limit:
            return self._all[0] + self.window_s - now
        return 0.0

    def _record(self, key: str, now: float) -> None:
        self._prune(now)
        q = self._hits.get(key)
        if q is None:
            # A key seen for the first time pushes out the least recently seen one.
            q = self._hits[key] = deque(maxlen=self.limit)
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        q.append(now)
        if self.global_limit is not None:
            self._all.append(now)

    def _prune(self, now: float) -> None:
        """Forget the least recently seen keys whose last hit has left the window: a sender
        that stopped leaves no trace, so the table holds only who is being counted now."""
        edge = now - self.window_s
        while self._hits:
            oldest = next(iter(self._hits.values()))
            if oldest and oldest[-1] > edge:
                return
            self._hits.popitem(last=False)
