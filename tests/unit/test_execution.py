"""``cohabit.execution``: the parsed ``--executor``/``--scheduler`` choice (table-driven).

The Dask cluster itself is exercised for real in tests/integration/test_dask_sweeps.py; the
commands' ``--executor``/``--scheduler`` checks in tests/unit/cli/test_executor_options.py.
"""

from __future__ import annotations

import dask.config
import pytest

from cohabit.execution import TIMEOUT_CONFIG, Execution, executor


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "ray"}, "--executor: 'ray' is not one of local, dask"),
        ({"kind": "dask"}, "--executor dask needs --scheduler ADDRESS"),
        ({"kind": "dask", "scheduler": ""}, "--executor dask needs --scheduler ADDRESS"),
        ({"kind": "local", "scheduler": "tcp://127.0.0.1:8786"},
         "--scheduler is only used with --executor dask"),
        ({"kind": "dask", "scheduler": "tcp://h:1", "timeout_s": 0}, "timeout must be > 0"),
    ],
    ids=["unknown", "dask-without-scheduler", "empty-scheduler", "local-with-scheduler",
         "zero-timeout"],
)
def test_bad_choices_name_the_option(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Execution(**kwargs)


@pytest.mark.parametrize(
    ("execution", "label", "distributed"),
    [(Execution(), "local", False),
     (Execution("dask", "tcp://10.0.0.5:8786"), "dask tcp://10.0.0.5:8786", True)],
    ids=["local", "dask"],
)
def test_label(execution, label, distributed):
    assert execution.label == label
    assert execution.distributed is distributed


def test_timeout_defaults_to_dasks_connect_timeout():
    e = Execution("dask", "tcp://127.0.0.1:1")
    with dask.config.set({TIMEOUT_CONFIG: "7s"}):
        assert e.timeout == 7.0
    with dask.config.set({TIMEOUT_CONFIG: "2 minutes"}):
        assert e.timeout == 120.0
    assert Execution("dask", "tcp://127.0.0.1:1", timeout_s=4.5).timeout == 4.5


def test_local_executor_runs_here():
    with executor(Execution()) as pool:
        assert pool is None
