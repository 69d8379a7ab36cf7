"""Usage samples of a cgroup over time, as cAdvisor would export them for a container: CPU
rate and memory working set every ``interval_s``, on a background thread."""

from __future__ import annotations

import threading
import time

import pandas as pd

from cohabit.cgroup import Cgroup, CgroupError

__all__ = ["SAMPLE_COLUMNS", "UsageSampler"]

SAMPLE_COLUMNS = ("time", "cpu_milli", "memory_mib", "throttled_periods", "periods")
"""``time`` (epoch s, end of the interval), ``cpu_milli`` (mean CPU rate over the interval,
millicores: cAdvisor's ``rate(container_cpu_usage_seconds_total) x 1000``), ``memory_mib``
(working set at the end, MiB), CFS ``throttled_periods`` and ``periods`` in the interval."""


class UsageSampler:
    """Samples ``group`` every ``interval_s`` seconds while running (context manager).

    Args:
        group: the cgroup.
        interval_s: sampling interval (> 0).

    Attributes:
        rows: the samples so far (read :meth:`frame` after leaving the context).
    """

    def __init__(self, group: Cgroup, interval_s: float = 1.0) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval must be > 0, got {interval_s}")
        self.group = group
        self.interval_s = interval_s
        self.rows: list[tuple[float, float, float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="usage-sampler", daemon=True)

    def _loop(self) -> None:
        try:
            prev = self.group.stats()
            t_prev = time.monotonic()
            while not self._stop.wait(self.interval_s):
                now = self.group.stats()
                t = time.monotonic()
                dt = max(t - t_prev, 1e-9)
                self.rows.append((
                    time.time(), 1000.0 * (now.cpu_usage_s - prev.cpu_usage_s) / dt,
                    now.memory_working_set_mib, now.nr_throttled - prev.nr_throttled,
                    now.nr_periods - prev.nr_periods))
                prev, t_prev = now, t
        except CgroupError:
            return  # the group went away: the samples so far stand

    def __enter__(self) -> UsageSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5 * self.interval_s + 5)

    def frame(self) -> pd.DataFrame:
        """The samples as a frame with :data:`SAMPLE_COLUMNS`."""
        return pd.DataFrame(self.rows, columns=list(SAMPLE_COLUMNS))
