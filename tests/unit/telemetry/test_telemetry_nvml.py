"""NVML reader and the agent's collector on replayed readings; degradation without a driver."""

from __future__ import annotations

import logging
from pathlib import Path

import pynvml
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cohabit.telemetry.nvml import NvmlCollector, NvmlReader, pod_uid_for_pid
from tests.helpers.replay_nvml import ReplayNvml

FIXTURE = Path(__file__).parent / "data" / "nvml_readings_a10x2.json"
UID = "0f8a2c6e-1b3d-4e5f-8a9b-0c1d2e3f4a5b"


@pytest.fixture
def proc(tmp_path):
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "cgroup").write_text(
        f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
        f"{UID.replace('-', '_')}.slice/cri-containerd-abc.scope\n")
    (tmp_path / "4243").mkdir()
    (tmp_path / "4243" / "cgroup").write_text(
        f"12:memory:/kubepods/besteffort/pod{UID}/0123abcd\n")
    return tmp_path


def test_reads_every_gpu_and_process(proc):
    reader = NvmlReader(ReplayNvml(FIXTURE), proc_root=proc)
    gpus = reader.read()
    assert reader.available and len(gpus) == 2
    g0, g1 = gpus
    assert g0.name == "NVIDIA A10" and g0.uuid.startswith("GPU-5f0c")
    assert g0.gpu_util_pct == 58 and g0.memory_total_mib == pytest.approx(23836, abs=1)
    assert g0.memory_used_mib == pytest.approx(12400, abs=1)
    assert [(p.pid, p.sm_util_pct, p.pod_uid) for p in g0.processes] == [
        (4242, 34.0, UID), (4243, 24.0, UID)]
    assert sum(p.memory_used_mib for p in g0.processes) == pytest.approx(12400, abs=1)
    assert g1.processes == () and g1.gpu_util_pct == 0  # NOT_SUPPORTED is tolerated
    # samples already seen are not reported again
    assert all(p.sm_util_pct == -1 for p in reader.read()[0].processes)


def test_collector_series(proc):
    registry = CollectorRegistry()
    registry.register(NvmlCollector(NvmlReader(ReplayNvml(FIXTURE), proc_root=proc), "gpu-1"))
    text = generate_latest(registry).decode()
    assert 'cohabit_nvml_up{node="gpu-1"} 1.0' in text
    gpu0 = 'gpu="0",model="NVIDIA A10",node="gpu-1",uuid="GPU-5f0c1b7e-8d2a-4b6e-9a51-3c2d7e9f1a20"'
    # Prometheus base units: NVML's 58 % as the ratio 0.58, its MiB as bytes
    assert f'cohabit_gpu_utilization_ratio{{{gpu0}}} 0.58' in text
    assert f'cohabit_gpu_process_sm_utilization_ratio{{gpu="0",node="gpu-1",pid="4242",' \
           f'pod_uid="{UID}"}} 0.34' in text
    used = NvmlReader(ReplayNvml(FIXTURE), proc_root=proc).read()[0].memory_used_mib
    exported = {(s.name, s.labels.get("gpu")): s.value
                for f in text_string_to_metric_families(text) for s in f.samples}
    assert exported[("cohabit_gpu_memory_used_bytes", "0")] == used * 2**20 > 0
    assert "_percent" not in text and "_mib" not in text


@pytest.mark.parametrize("code", [pynvml.NVML_ERROR_LIBRARY_NOT_FOUND,
                                  pynvml.NVML_ERROR_DRIVER_NOT_LOADED],
                         ids=["no-library", "no-driver"])
def test_degrades_without_driver(code, caplog):
    with caplog.at_level(logging.WARNING):
        reader = NvmlReader(ReplayNvml(FIXTURE, fail_init=code))
    assert not reader.available and reader.read() == []
    assert "NVML unavailable" in caplog.text and "no NVIDIA driver" in caplog.text
    registry = CollectorRegistry()
    registry.register(NvmlCollector(reader, "n"))
    assert 'cohabit_nvml_up{node="n"} 0.0' in generate_latest(registry).decode()


def test_real_pynvml_on_this_gpu_less_machine_degrades(caplog):
    with caplog.at_level(logging.WARNING):
        reader = NvmlReader()  # the real pynvml: no driver here
    if reader.available:  # pragma: no cover - a machine with a GPU
        pytest.skip("this machine has an NVIDIA driver")
    assert reader.read() == [] and "NVML unavailable" in caplog.text


def test_pid_outside_a_pod(tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "cgroup").write_text("0::/init.scope\n")
    assert pod_uid_for_pid(1, tmp_path) == "" and pod_uid_for_pid(99, tmp_path) == ""
