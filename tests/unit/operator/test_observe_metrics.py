"""The dashboards' operator gauges: cluster GPU view and pending pods replace stale series;
current requests and the low-confidence flag per workload, removed when it is forgotten."""

from __future__ import annotations

from prometheus_client import generate_latest

from cohabit.engine.observe import GpuModelView, PendingView
from cohabit.model import Resources
from cohabit.operator.runtime import Metrics


def samples(m: Metrics, name: str) -> dict[tuple, float]:
    return {tuple(sorted(s.labels.items())): s.value
            for fam in m.registry.collect() for s in fam.samples if s.name == name}


def test_cluster_view_replaces_models_and_classes_no_longer_present():
    m = Metrics()
    a10 = GpuModelView("A10", nodes=2, gpus=3, capacity_milli=3000, idle_milli=1500,
                       frag_milli=500.0)
    t4 = GpuModelView("T4", nodes=1, gpus=4, capacity_milli=4000, idle_milli=4000,
                      frag_milli=None)
    m.set_cluster([a10, t4], [PendingView("Burstable", 2, 30.0)])
    assert samples(m, "cohabit_cluster_gpu_allocation_ratio") == {
        (("gpu_model", "A10"),): 0.5, (("gpu_model", "T4"),): 0.0}
    assert samples(m, "cohabit_cluster_gpu_fragmentation_ratio") == {
        (("gpu_model", "A10"),): 500 / 1500}  # T4: no typical pods, no figure
    assert samples(m, "cohabit_cluster_gpu_fragmented_gpus") == {(("gpu_model", "A10"),): 0.5}
    assert samples(m, "cohabit_cluster_gpus") == {(("gpu_model", "A10"),): 3,
                                                  (("gpu_model", "T4"),): 4}
    assert samples(m, "cohabit_scheduler_oldest_pending_pod_age_seconds") == {
        (("qos_class", "Burstable"),): 30.0}

    m.set_cluster([a10], [PendingView("Guaranteed", 1, 5.0)])
    assert set(samples(m, "cohabit_cluster_gpus")) == {(("gpu_model", "A10"),)}
    assert samples(m, "cohabit_scheduler_pending_pods") == {(("qos_class", "Guaranteed"),): 1}
    m.set_cluster([], [])
    assert not samples(m, "cohabit_cluster_gpus")
    assert not samples(m, "cohabit_scheduler_pending_pods")


def test_requests_in_exported_units_and_forgotten_with_the_workload():
    m = Metrics()
    m.set_requests("ns", "sd", "GpuWorkload",
                   {"server": Resources(cpu_milli=4000, memory_mib=16384, gpu_milli=500,
                                        gpu_memory_mib=12288),
                    "sidecar": Resources(cpu_milli=100)}, low_confidence=True)
    key = (("container", "server"), ("kind", "GpuWorkload"), ("namespace", "ns"),
           ("workload", "sd"))
    assert samples(m, "cohabit_request_cpu_cores")[key] == 4.0
    assert samples(m, "cohabit_request_memory_bytes")[key] == 16 * 2**30
    assert samples(m, "cohabit_request_gpus")[key] == 0.5
    assert samples(m, "cohabit_request_gpu_memory_bytes")[key] == 12 * 2**30
    assert len(samples(m, "cohabit_request_cpu_cores")) == 2
    assert len(samples(m, "cohabit_request_gpus")) == 1  # no zero series for the sidecar
    assert list(samples(m, "cohabit_recommendation_low_confidence").values()) == [1]

    m.set_requests("ns", "sd", "GpuWorkload", {"server": Resources(cpu_milli=2000)}, False)
    assert len(samples(m, "cohabit_request_cpu_cores")) == 1
    assert not samples(m, "cohabit_request_gpus")
    assert list(samples(m, "cohabit_recommendation_low_confidence").values()) == [0]
    m.forget_requests("ns", "sd", "GpuWorkload")
    text = generate_latest(m.registry).decode()
    assert 'workload="sd"' not in text
