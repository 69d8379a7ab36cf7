"""Load the shipped openb trace for the benchmarks (via the simulator's loaders when present)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cohabit.model import GpuDevice, Node, Pod, QosClass

DATA = Path(__file__).resolve().parents[1] / "src" / "cohabit" / "data"
OPENB = DATA / "alibaba-gpu-2023"
PUBLISHED = DATA / "fgd-published" / "fgd_expected_results_summary.csv"


def load_nodes(path: Path = OPENB / "openb_node_list_gpu_node.csv") -> list[Node]:
    """The node list as model nodes."""
    try:
        from cohabit.simulator import loaders

        return loaders.load_nodes(path)
    except ImportError:  # pragma: no cover - before the loaders landed
        df = pd.read_csv(path, keep_default_na=False)
        return [
            Node(r.sn, int(r.cpu_milli), int(r.memory_mib), int(r.cpu_milli),
                 int(r.memory_mib), tuple(GpuDevice(i, r.model) for i in range(int(r.gpu))))
            for r in df.itertuples()
        ]


def load_pods(path: Path, nodes: list[Node]) -> list[Pod]:
    """A pod list as model pods."""
    try:
        from cohabit.simulator import loaders

        return loaders.load_pods(path, nodes)
    except ImportError:  # pragma: no cover
        df = pd.read_csv(path, keep_default_na=False, dtype=str)
        out = []
        for r in df.to_dict("records"):
            spec = r.get("gpu_spec", "")
            out.append(Pod(
                r["name"], int(r["cpu_milli"]), int(r["memory_mib"]), int(r["num_gpu"]),
                int(r["gpu_milli"]), frozenset(s for s in spec.split("|") if s),
                QosClass(r.get("qos") or "BE"),
            ))
        return out


def pod_list(workload: str) -> Path:
    """Path of ``openb_pod_list_<workload>.csv`` (``workload`` with or without the prefix)."""
    name = workload if workload.startswith("openb_pod_list_") else f"openb_pod_list_{workload}"
    return OPENB / f"{name}.csv"


def raw_spec_text(path: Path) -> list[str]:
    """The raw ``gpu_spec`` text of each pod row ('' when the column is absent)."""
    df = pd.read_csv(path, keep_default_na=False, dtype=str)
    if "gpu_spec" not in df.columns:
        return [""] * len(df)
    return [s.strip() for s in df["gpu_spec"]]
