"""Event aggregation as client-go's recorder does it: repeats bump count and lastTimestamp of
one Event (throttled), many distinct messages of one reason collapse into a combined Event,
writes never raise into the caller, the queue is bounded."""

from __future__ import annotations

import pytest

from cohabit.operator.events import (
    COMBINED_PREFIX,
    EventCorrelator,
    EventRecorder,
    MemoryEventSink,
    ObjectRef,
)

POD = ObjectRef("Pod", "sd-0", "ns", uid="u-1")


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def recorder(interval: float = 30.0, **kw):
    clock = Clock()
    sink = MemoryEventSink()
    rec = EventRecorder(sink, correlator=EventCorrelator(repeat_interval_s=interval, **kw),
                        background=False, clock=clock)
    return rec, sink, clock


def test_event_body_names_the_object_and_cohabit():
    rec, sink, _ = recorder()
    rec.normal(POD, "Scheduled", "Successfully assigned ns/sd-0 to g1")
    [event] = sink.events.values()
    assert event["involvedObject"] == {"kind": "Pod", "name": "sd-0", "namespace": "ns",
                                       "uid": "u-1", "apiVersion": "v1"}
    assert event["metadata"]["namespace"] == "ns" and event["metadata"]["name"].startswith(
        "sd-0.")
    assert (event["type"], event["reason"], event["count"]) == ("Normal", "Scheduled", 1)
    assert event["source"] == {"component": "cohabit"}
    assert event["firstTimestamp"] == event["lastTimestamp"]


def test_cluster_scoped_objects_post_to_default():
    rec, sink, _ = recorder()
    rec.warning(ObjectRef("PlacementPolicy", "gold", api_version="cohabit.io/v1alpha1"),
                "InvalidSpec", "spec.policy: 'tetris' is not a placement policy")
    [event] = sink.events.values()
    assert event["metadata"]["namespace"] == "default"
    assert "namespace" not in event["involvedObject"]


@pytest.mark.parametrize(
    ("gaps", "writes", "count"),
    [([0, 1, 1, 1], 1, 1), ([0, 1, 40], 2, 3), ([0, 31, 31, 31], 4, 4)],
    ids=["repeats-within-interval-wait", "next-write-carries-the-count", "spaced-repeats"],
)
def test_repeats_bump_one_event_throttled(gaps, writes, count):
    rec, sink, clock = recorder(interval=30.0)
    for gap in gaps:
        clock.now += gap
        rec.warning(POD, "FailedScheduling", "0/2 nodes are available: 2 Insufficient cpu.")
    assert len(sink.events) == 1
    [event] = sink.events.values()
    assert sink.writes == writes and event["count"] == count


def test_deferred_repeats_are_flushed_when_due():
    rec, sink, clock = recorder(interval=30.0)
    for _ in range(3):
        rec.warning(POD, "FailedScheduling", "no room")
        clock.now += 1
    assert next(iter(sink.events.values()))["count"] == 1
    assert rec.correlator.next_due(clock.now) == pytest.approx(27.0)
    clock.now += 27
    assert rec.flush() == 1
    [event] = sink.events.values()
    assert event["count"] == 3 and event["lastTimestamp"] != event["firstTimestamp"]


def test_different_messages_are_different_events_until_combined():
    rec, sink, _ = recorder(similar_max=3)
    for i in range(3):
        rec.warning(POD, "FailedScheduling", f"message {i}")
    assert len(sink.events) == 3
    rec.warning(POD, "FailedScheduling", "message 3")
    rec.warning(POD, "FailedScheduling", "message 4")
    combined = [e for e in sink.events.values() if e["message"].startswith(COMBINED_PREFIX)]
    assert len(sink.events) == 4 and len(combined) == 1
    assert rec.correlator.events[(POD, "Warning", "FailedScheduling", None)].count == 2


def test_an_expired_event_is_created_again():
    rec, sink, clock = recorder(interval=0.0)
    rec.normal(POD, "Scheduled", "assigned")
    sink.events.clear()  # the API server's event TTL (1 h) removed it
    clock.now += 1
    rec.normal(POD, "Scheduled", "assigned")
    [event] = sink.events.values()
    assert event["count"] == 2


class FailingSink(MemoryEventSink):
    def create(self, body):
        raise OSError("connection refused")


def test_write_failures_never_raise_and_retry_later():
    clock = Clock()
    rec = EventRecorder(FailingSink(), correlator=EventCorrelator(repeat_interval_s=30),
                        background=False, clock=clock)
    rec.warning(POD, "EvictionRefused", "PDB")  # no exception
    assert rec.failures == 1
    assert rec.flush() == 0 and rec.failures == 1  # not retried within the interval
    clock.now += 31
    rec.flush()
    assert rec.failures == 2


def test_queue_is_bounded():
    rec = EventRecorder(MemoryEventSink(), background=True, max_queue=2)  # worker not started
    for i in range(5):
        rec.normal(POD, "Scheduled", str(i))
    assert rec.dropped == 3


def test_lru_forgets_old_events():
    correlator = EventCorrelator(max_events=2)
    for i in range(3):
        correlator.observe(ObjectRef("Pod", f"p{i}", "ns"), "Normal", "Scheduled", "x", 0.0)
    assert [e.ref.name for e in correlator.events.values()] == ["p1", "p2"]
