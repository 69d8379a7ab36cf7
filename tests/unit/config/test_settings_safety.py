"""Safety settings: timeouts must be finite and above 0; the QoS-query opt-out list parses."""

from __future__ import annotations

import pytest

from cohabit.config import OperatorSettings, SettingsError


@pytest.mark.parametrize(
    ("key", "value"),
    [("COHABIT_KUBE_REQUEST_TIMEOUT_S", "0"), ("COHABIT_PROMETHEUS_TIMEOUT_S", "-1"),
     ("COHABIT_PROMETHEUS_TIMEOUT_S", "inf"), ("COHABIT_KUBE_LEDGER_GRACE_S", "nan")],
    ids=["zero-timeout", "negative-timeout", "infinite-timeout", "nan-grace"],
)
def test_unbounded_waits_are_refused(key, value):
    with pytest.raises(SettingsError, match=key):
        OperatorSettings.from_env({key: value})


def test_defaults_bound_every_call_and_confine_every_query():
    s = OperatorSettings()
    assert s.kube.request_timeout_s == 10.0 and s.prometheus.timeout_s == 10.0
    assert s.kube.ledger_grace_s > s.kube.request_timeout_s
    assert s.prometheus.namespace_label == "namespace" and s.prometheus.unconfined() == set()
    opted = OperatorSettings.from_env({"COHABIT_PROMETHEUS_UNCONFINED_NAMESPACES": " sre, ,ops"})
    assert opted.prometheus.unconfined() == {"sre", "ops"}
