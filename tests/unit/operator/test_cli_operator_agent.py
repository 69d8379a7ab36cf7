"""``cohabit operator`` / ``cohabit run`` and ``cohabit agent`` on the command line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cohabit.cli.main import app
from cohabit.telemetry.nvml import NvmlReader


@pytest.mark.parametrize("command", ["operator", "run"])
def test_operator_commands_are_registered(command):
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    for option in ("--kubeconfig", "--prometheus-url", "--standalone", "--ledger-namespace"):
        assert option in result.output


def test_bad_setting_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("COHABIT_RECONCILE_INTERVAL_S", "soon")
    result = CliRunner().invoke(app, ["operator"])
    assert result.exit_code == 2
    assert "COHABIT_RECONCILE_INTERVAL_S" in result.output


def test_agent_once_without_a_driver_serves_nvml_down():
    if NvmlReader().available:  # pragma: no cover - a machine with an NVIDIA driver
        pytest.skip("this machine has an NVIDIA driver")
    result = CliRunner().invoke(app, ["agent", "--once", "--node", "n1"])
    assert result.exit_code == 0
    assert 'cohabit_nvml_up{node="n1"} 0.0' in result.output
    assert "cohabit_gpu_utilization_ratio" in result.output  # the family, with no samples
