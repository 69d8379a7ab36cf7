"""cgroup detection from /proc/mounts text, and the files a v2 group writes (this machine runs
v1, so v2 is checked against the unified hierarchy's file shapes in a directory standing in
for it; v1 runs for real in tests/integration/test_db_profile.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cohabit.cgroup import CgroupError, detect
from cohabit.cgroup.core import milli_to_shares, shares_to_weight

V1 = """cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""


def test_detects_v1_from_mounts(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(V1)
    tree = detect(mounts)
    assert tree.version == 1
    assert tree.mounts["memory"] == Path("/sys/fs/cgroup/memory")


def test_detects_v2_when_the_unified_mount_offers_cpu_and_memory(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    mounts = tmp_path / "mounts"
    mounts.write_text(f"cgroup2 {root} cgroup2 rw 0 0\n")
    tree = detect(mounts)
    assert tree.version == 2 and tree.mounts["unified"] == root


def test_no_usable_hierarchy_says_what_to_enable(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text("proc /proc proc rw 0 0\n")
    with pytest.raises(CgroupError, match="cpu and memory controllers"):
        detect(mounts)


@pytest.mark.parametrize(("milli", "shares"), [(None, 1024), (1, 2), (250, 256), (4000, 4096)])
def test_kubelet_shares(milli, shares) -> None:
    assert milli_to_shares(milli) == shares


def test_shares_to_weight_matches_the_runc_conversion() -> None:
    assert shares_to_weight(2) == 1 and shares_to_weight(262144) == 10000
    assert shares_to_weight(1024) == 39


def test_v2_group_writes_the_unified_files(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu memory\n")
    (root / "cgroup.subtree_control").write_text("")
    mounts = tmp_path / "mounts"
    mounts.write_text(f"cgroup2 {root} cgroup2 rw 0 0\n")
    tree = detect(mounts)
    parent = root / "cohabit"
    parent.mkdir()
    (parent / "cgroup.subtree_control").write_text("")
    group = tree.create("db", unique=False)
    d = parent / "db"
    assert "+cpu" in (root / "cgroup.subtree_control").read_text()
    assert "+memory" in (parent / "cgroup.subtree_control").read_text()
    group.set_cpu(250)
    group.set_memory(512)
    assert (d / "cpu.max").read_text() == "25000 100000"
    assert (d / "cpu.weight").read_text() == str(shares_to_weight(256))
    assert (d / "memory.max").read_text() == str(512 << 20)
    assert group.limits() == (250, 100_000, 512)
    group.set_cpu(None)
    group.set_memory(None)
    assert (d / "cpu.max").read_text() == "max 100000"
    assert group.limits() == (None, 100_000, None)
    cmd = group.wrap(["postgres", "-D", "x"])
    assert cmd[:2] == ["/bin/sh", "-c"] and str(d / "cgroup.procs") in cmd[2]
    assert cmd[-3:] == ["postgres", "-D", "x"]
