"""Control groups of the local node: create one, set its CPU quota, memory limit and cpuset,
start processes in it, read its counters, kill what is in it and remove it.

The profiling adapter (:mod:`cohabit.profiling`) starts a database inside one; the local-node
actuator (:mod:`cohabit.actuator.cgroup`) changes its limits, as the kubelet does for a
container. Both cgroup versions are supported, detected at run time from ``/proc/mounts``
(:func:`detect`):

* **v1** (this project's test machines): the ``cpu``, ``cpuacct``, ``memory`` and ``cpuset``
  hierarchies, each mounted on its own directory (or combined, e.g. ``cpu,cpuacct``);
  CPU as CFS quota (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), memory as
  ``memory.limit_in_bytes``.
* **v2** (the unified hierarchy): ``cpu.max`` (``"<quota> <period>"``), ``memory.max``,
  ``cpuset.cpus``; the parent ``cohabit`` group enables the controllers in its
  ``cgroup.subtree_control`` and holds no process itself (v2's no-internal-process rule).

Units: CPU in millicores (1000 = one core of CFS quota per period), memory in MiB, CFS
period in microseconds (the kubelet's default is 100,000 us). Every group cohabit makes lives
under a ``cohabit`` parent directory of each hierarchy.
"""

from cohabit.cgroup.core import (
    DEFAULT_CFS_PERIOD_US,
    Cgroup,
    CgroupError,
    CgroupStats,
    CgroupTree,
    detect,
)

__all__ = [
    "DEFAULT_CFS_PERIOD_US",
    "Cgroup",
    "CgroupError",
    "CgroupStats",
    "CgroupTree",
    "detect",
]
