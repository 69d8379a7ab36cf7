"""Fixtures of the operator tests (the factories are in operator_factories.py)."""

from __future__ import annotations

import pytest
from operator_factories import GENAI_POD, RecordingActuator

from cohabit.config import OperatorSettings, PolicyConfig
from cohabit.operator.runtime import Runtime


@pytest.fixture(scope="session")
def genai_frame(shared_data):
    from cohabit.predictors import load_genai

    frame = load_genai(shared_data / "alibaba-genai-2026")
    return frame[frame["pod"] == GENAI_POD].reset_index(drop=True)


@pytest.fixture
def make_runtime():
    def make(usage=None, cluster=None, actuator=None, settings=None, policies=("default",)):
        """A runtime whose ``policies`` exist (as the chart's ``default`` does)."""
        rt = Runtime(settings=settings or OperatorSettings(), api_client=None,
                     cluster=cluster, usage=usage, actuator=actuator or RecordingActuator())
        rt.policies.update({name: PolicyConfig(name=name) for name in policies})
        return rt
    return make
