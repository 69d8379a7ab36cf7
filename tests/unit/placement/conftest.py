"""Real data for the placement unit tests."""

from __future__ import annotations

import pandas as pd
import pytest

from cohabit.model import GpuDevice, Node, Pod


@pytest.fixture(scope="session")
def default_trace(package_data):
    """(nodes, pods) of the openb default list, read with a minimal pandas reader."""
    base = package_data / "alibaba-gpu-2023"
    nd = pd.read_csv(base / "openb_node_list_gpu_node.csv", keep_default_na=False)
    nodes = [Node(r.sn, r.cpu_milli, r.memory_mib, r.cpu_milli, r.memory_mib,
                  tuple(GpuDevice(i, r.model) for i in range(r.gpu))) for r in nd.itertuples()]
    pd_ = pd.read_csv(base / "openb_pod_list_default.csv", keep_default_na=False)
    pods = [Pod(r.name, r.cpu_milli, r.memory_mib, r.num_gpu, r.gpu_milli)
            for r in pd_.itertuples()]
    return nodes, pods
