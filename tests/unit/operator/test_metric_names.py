"""Every metric the operator and the node agent export follows Prometheus' naming conventions
(https://prometheus.io/docs/practices/naming/), with every series populated: a ``cohabit_``
prefix, snake case, base units named as a suffix (seconds, bytes, ratio 0..1; never MiB,
percent or milli-units), ``_total`` on counters and only on counters, a help text; and
``promtool check metrics`` (Debian's ``prometheus`` package, installed by
scripts/ci-system-deps.sh) finds nothing. Issue 14's cluster view is all there: QoS-violation
counts, actions by kind and outcome, reconcile latency, GPU allocation/fragmentation per
model, pending pods by QoS class, recommendations vs current requests, confidence.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from cohabit.operator.runtime import Metrics
from cohabit.telemetry.nvml import GpuReading, NvmlCollector, ProcessReading

NAME = re.compile(r"^cohabit_[a-z][a-z0-9_]*[a-z0-9]$")
NOT_BASE_UNITS = {"mib", "gib", "mb", "kb", "kib", "percent", "pct", "milli", "ms",
                  "milliseconds", "minutes", "hours", "cores_milli"}
RESERVED_SUFFIXES = ("_total", "_count", "_sum", "_bucket", "_created")

CLUSTER_VIEW = {
    "cohabit_qos_violations": {"namespace", "workload", "kind"},
    "cohabit_actions_total": {"action", "status"},
    "cohabit_reconcile_duration_seconds_bucket": {"loop", "le"},
    "cohabit_cluster_gpu_allocation_ratio": {"gpu_model"},
    "cohabit_cluster_gpu_fragmentation_ratio": {"gpu_model"},
    "cohabit_scheduler_pending_pods": {"qos_class"},
    "cohabit_recommendation_cpu_cores": {"namespace", "workload", "kind", "container"},
    "cohabit_request_cpu_cores": {"namespace", "workload", "kind", "container"},
    "cohabit_recommendation_memory_bytes": {"namespace", "workload", "kind", "container"},
    "cohabit_request_memory_bytes": {"namespace", "workload", "kind", "container"},
    "cohabit_recommendation_confidence_ratio": {"namespace", "workload", "kind"},
}


def _operator_exposition() -> str:
    """The operator's registry with one series in every metric."""
    m = Metrics()
    for metric in _wrappers(m):
        child = metric.labels(*["x"] * len(metric._labelnames)) if metric._labelnames \
            else metric
        {"counter": lambda c: c.inc(), "gauge": lambda c: c.set(1.0),
         "histogram": lambda c: c.observe(0.2)}[metric._type](child)
    return generate_latest(m.registry).decode()


def _wrappers(m: Metrics) -> list[MetricWrapperBase]:
    found = []
    for value in vars(m).values():
        for v in value.values() if isinstance(value, dict) else [value]:
            if isinstance(v, MetricWrapperBase):
                found.append(v)
    assert len(found) >= 20
    return found


class _Readings:
    """Readings of one A10 with one pod's process (what NVML reports: MiB and percent)."""

    available = True

    def read(self) -> list[GpuReading]:
        return [GpuReading(0, "NVIDIA A10", "GPU-0", 58.0, 21.0, 23028.0, 12400.0,
                           (ProcessReading(4242, 12400.0, 34.0, "uid-1"),))]


def _agent_exposition() -> str:
    registry = CollectorRegistry()
    registry.register(NvmlCollector(_Readings(), "gpu-1"))  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def _problems(text: str) -> list[str]:
    out = []
    families = list(text_string_to_metric_families(text))
    stems = {f.name for f in families if f.type in ("counter", "histogram", "summary")}
    for fam in families:
        if fam.name.endswith("_created") and fam.name[:-len("_created")] in stems:
            continue  # prometheus_client's creation time of a counter/histogram (text 0.0.4)
        name = fam.name + ("_total" if fam.type == "counter" else "")
        if not NAME.match(name):
            out.append(f"{name}: not cohabit_ snake case")
        if not fam.documentation.strip():
            out.append(f"{name}: no help text")
        if NOT_BASE_UNITS & set(name.split("_")):
            out.append(f"{name}: not in base units")
        if fam.type != "counter" and fam.name.endswith(RESERVED_SUFFIXES):
            out.append(f"{name}: a {fam.type} with a reserved suffix")
        if fam.type == "histogram" and not fam.name.endswith(("_seconds", "_bytes")):
            out.append(f"{name}: histogram without a unit")
        if not fam.samples:
            out.append(f"{name}: no series (the check would not see it)")
    # the parser appends _total to a counter's samples itself: read the exposed TYPE lines
    for line in text.splitlines():
        match = re.match(r"# TYPE (\S+) counter$", line)
        if match and not match.group(1).endswith("_total"):
            out.append(f"{match.group(1)}: a counter without _total")
    return out


@pytest.mark.parametrize("exposition", [_operator_exposition, _agent_exposition],
                         ids=["operator", "agent"])
def test_metric_names_follow_prometheus_conventions(exposition):
    text = exposition()
    assert not _problems(text), "\n".join(_problems(text))
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (scripts/ci-system-deps.sh installs prometheus)")
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert not (check.stdout + check.stderr).strip(), check.stdout + check.stderr


def test_the_checks_catch_what_they_are_for():
    bad = ("# HELP cohabit_gpu_memory_used_mib x\n# TYPE cohabit_gpu_memory_used_mib gauge\n"
           "cohabit_gpu_memory_used_mib 1\n"
           "# HELP cohabit_evictions x\n# TYPE cohabit_evictions counter\ncohabit_evictions 1\n"
           "# HELP cohabit_pods_total x\n# TYPE cohabit_pods_total gauge\ncohabit_pods_total 1\n")
    problems = "\n".join(_problems(bad))
    assert "cohabit_gpu_memory_used_mib: not in base units" in problems
    assert "cohabit_evictions: a counter without _total" in problems
    assert "cohabit_pods_total: a gauge with a reserved suffix" in problems
    promtool = shutil.which("promtool")
    if promtool is not None:
        check = subprocess.run([promtool, "check", "metrics"], input=bad, capture_output=True,
                               text=True, timeout=60)
        assert check.returncode != 0
        assert 'cohabit_evictions counter metrics should have "_total" suffix' in check.stderr


def test_the_cluster_view_the_dashboard_needs_is_exported():
    series = {}
    for fam in text_string_to_metric_families(_operator_exposition()):
        for s in fam.samples:
            series[s.name] = set(s.labels)
    missing = {n: labels for n, labels in CLUSTER_VIEW.items() if series.get(n) != labels}
    assert not missing, missing
