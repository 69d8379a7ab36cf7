"""Fixtures of the operator tests (the factories are in operator_factories.py)."""

from __future__ import annotations

import pytest

from cohabit.config import OperatorSettings, PolicyConfig
from cohabit.operator import handlers, reconciler
from cohabit.operator.runtime import Runtime
from cohabit.telemetry import kube
from cohabit.telemetry.kube import KubeClusterSource
from tests.helpers.operator_factories import (
    DEPLOYMENT,
    GENAI_POD,
    NOW,
    RecordingActuator,
    gpu_node,
    pod_json,
)


@pytest.fixture(scope="session")
def genai_frame(shared_data):
    from cohabit.predictors import load_genai

    frame = load_genai(shared_data / "alibaba-genai-2026")
    return frame[frame["pod"] == GENAI_POD].reset_index(drop=True)


@pytest.fixture
def make_runtime():
    def make(usage=None, cluster=None, actuator=None, settings=None, policies=("default",)):
        """A runtime whose ``policies`` exist (as the chart's ``default`` does); its cluster
        source reads the API (no server: ``cluster_api`` answers its reads) unless given."""
        settings = settings or OperatorSettings()
        if cluster is None:
            cluster = KubeClusterSource(None, request_timeout=settings.kube.request_timeout_s)
        rt = Runtime(settings=settings, api_client=None,
                     cluster=cluster, usage=usage, actuator=actuator or RecordingActuator())
        rt.policies.update({name: PolicyConfig(name=name) for name in policies})
        return rt
    return make


@pytest.fixture
def cluster_api(monkeypatch):
    """The API reads of a workload pass answered from ``state`` (target, pods, nodes): the
    reconciler's target read and the API cluster source's pod list and node reads."""
    state = {"target": DEPLOYMENT, "pods": [pod_json("sd-0", "g1"), pod_json("sd-1")],
             "nodes": {"g1": gpu_node("g1")}}
    monkeypatch.setattr(reconciler, "read_target",
                        lambda api, ns, kind, name, **_: state["target"])
    monkeypatch.setattr(kube, "list_workload_pods", lambda api, ns, name, **_: state["pods"])
    monkeypatch.setattr(kube, "read_nodes", lambda api, names, *_: [
        state["nodes"][n] for n in sorted(names) if n in state["nodes"]])
    monkeypatch.setattr(handlers.time, "time", lambda: NOW)
    return state
