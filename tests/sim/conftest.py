"""Real openb trace for the simulator tests (package data, read by the simulator's loaders)."""

from __future__ import annotations

import pytest

from cohabit.simulator import loaders
from cohabit.simulator.report import published_curves


@pytest.fixture(scope="session")
def openb_nodes(package_data):
    """The 1,213 GPU nodes of the openb trace."""
    return loaders.load_nodes(package_data / "alibaba-gpu-2023" / "openb_node_list_gpu_node.csv")


@pytest.fixture(scope="session")
def openb_default_pods(package_data, openb_nodes):
    """The 8,152 pods of the openb default list."""
    path = package_data / "alibaba-gpu-2023" / "openb_pod_list_default.csv"
    return loaders.load_pods(path, openb_nodes, require_times=True)


@pytest.fixture(scope="session")
def published(package_data):
    """The FGD paper's published mean curves, with our policy names in ``policy``."""
    return published_curves(package_data / "fgd-published" / "fgd_expected_results_summary.csv")
