"""``workload_status``'s ``lastActions``: a pass's actions with their time; a pass without
actions keeps the previous list (the last resize stays visible)."""

from __future__ import annotations

from cohabit.engine.reconcile import Assessment
from cohabit.model import Outcome, QosTarget, Resize, Resources, Workload, WorkloadKind
from cohabit.operator.status import workload_status

WORKLOAD = Workload(name="sd", namespace="ns", kind=WorkloadKind.GPU_INFERENCE,
                    qos_target=QosTarget(metric="p99LatencyMs", value=100.0))
RESIZE = Outcome(Resize(workload="ns/sd", container="server",
                        requests=Resources(cpu_milli=2000)), "done", "patched")


def test_actions_carry_their_time_and_survive_a_quiet_pass():
    a = Assessment(workload=WORKLOAD)
    first = workload_status(a, [RESIZE], 1, 1_000_000.0)
    [action] = first["lastActions"]
    assert action["action"] == "Resize" and action["target"] == "ns/sd/server"
    assert action["status"] == "done" and action["time"] == first["lastPlanTime"]

    quiet = workload_status(a, [], 1, 1_000_060.0, previous=first)
    assert quiet["lastActions"] == first["lastActions"]
    assert quiet["lastPlanTime"] != first["lastPlanTime"]

    refused = Outcome(Resize(workload="ns/sd", container="server",
                             requests=Resources(cpu_milli=1500)), "refused", "PDB")
    later = workload_status(a, [refused], 1, 1_000_120.0, previous=quiet)
    assert [x["status"] for x in later["lastActions"]] == ["refused"]
    assert later["lastActions"][0]["time"] == later["lastPlanTime"]


def test_no_actions_and_no_previous_status_gives_an_empty_list():
    assert workload_status(Assessment(workload=WORKLOAD), [], 1, 1_000_000.0)["lastActions"] == []
