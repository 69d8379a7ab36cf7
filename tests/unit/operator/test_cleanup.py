"""The kopf cleanup handler releases the telemetry source's HTTP connections, stops the
cluster cache and writes the Events still queued."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cohabit.operator.events import EventRecorder, MemoryEventSink, ObjectRef
from cohabit.operator.handlers import cleanup


class _Closing:
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1

    def stop(self) -> None:
        self.closed += 1


@pytest.mark.parametrize("usage", [_Closing(), None, object()], ids=["closable", "none", "plain"])
def test_cleanup_closes_what_can_be_closed(usage):
    sink = MemoryEventSink()
    events = EventRecorder(sink, background=True)  # not started: cleanup writes the queue
    events.normal(ObjectRef("Pod", "p", "ns"), "Scheduled", "assigned")
    cluster = _Closing()
    cleanup(memo=SimpleNamespace(runtime=SimpleNamespace(usage=usage, cluster=cluster,
                                                         events=events)))
    if isinstance(usage, _Closing):
        assert usage.closed == 1
    assert cluster.closed == 1
    assert [e["reason"] for e in sink.events.values()] == ["Scheduled"]
