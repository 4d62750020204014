"""Snowflake ids shaped like Discord's: creation time, worker, process, increment."""

from __future__ import annotations

import threading
import time

# Discord's epoch, the first second of 2015, in milliseconds since the Unix epoch.
DISCORD_EPOCH_MS = 1_420_070_400_000


class SnowflakeGenerator:
    """Unique, increasing snowflakes; `discord.utils.snowflake_time` decodes their time."""

    def __init__(self, worker_id: int = 1, process_id: int = 0) -> None:
        self._worker_id = worker_id & 0x1F
        self._process_id = process_id & 0x1F
        self._increment = 0
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        """Return a new snowflake, larger than every one returned before."""
        with self._lock:
            self._increment = (self._increment + 1) & 0xFFF
            elapsed_ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
            value = (elapsed_ms << 22) | (self._worker_id << 17) | (self._process_id << 12) | self._increment

            # More than 4096 ids in one millisecond would wrap the increment.
            if value <= self._last:
                value = self._last + 1
            self._last = value
            return value


def snowflake_time_ms(snowflake: int) -> int:
    """Return the creation time of `snowflake` in milliseconds since the Unix epoch."""
    return (int(snowflake) >> 22) + DISCORD_EPOCH_MS
