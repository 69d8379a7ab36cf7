"""Factories for small hand-checkable clusters."""

from __future__ import annotations

from collections.abc import Sequence

from cohabit.model import GpuDevice, Node, Pod


def mk_node(name: str, cpu: int = 64_000, gpus: int = 8, model: str = "T4",
            mem: int = 256_000) -> Node:
    """A fully free node with ``gpus`` GPUs of ``model``."""
    return Node(name, cpu, mem, cpu, mem, tuple(GpuDevice(i, model) for i in range(gpus)))


def mk_pod(name: str, cpu: int = 1_000, num: int = 0, milli: int = 0, mem: int = 1_000,
           spec: Sequence[str] = (), node: str | None = None,
           gpus: Sequence[int] = ()) -> Pod:
    """A pod; ``node``/``gpus`` make it a bound pod."""
    return Pod(name, cpu, mem, num, milli, frozenset(spec), node=node, gpu_indices=tuple(gpus))


def used(node: str, gpu: int, milli: int, cpu: int = 0, tag: str = "") -> Pod:
    """A bound sharing pod that uses ``milli`` of ``gpu`` on ``node`` (to shape free space)."""
    if milli >= 1000:
        return mk_pod(f"u-{node}-{gpu}{tag}", cpu=cpu, num=1, milli=1000, node=node, gpus=[gpu])
    return mk_pod(f"u-{node}-{gpu}{tag}", cpu=cpu, num=1, milli=milli, node=node, gpus=[gpu])
