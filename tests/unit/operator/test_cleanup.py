"""The kopf cleanup handler releases the telemetry source's HTTP connections."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cohabit.operator.handlers import cleanup


class _Closing:
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


@pytest.mark.parametrize("usage", [_Closing(), None, object()], ids=["closable", "none", "plain"])
def test_cleanup_closes_what_can_be_closed(usage):
    cleanup(memo=SimpleNamespace(runtime=SimpleNamespace(usage=usage)))
    if isinstance(usage, _Closing):
        assert usage.closed == 1
