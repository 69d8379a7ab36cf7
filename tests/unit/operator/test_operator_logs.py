"""The operator's log lines: ``[namespace/name]`` on lines about an object (cohabit's and
kopf's), and kopf's DEBUG watch-pause lines re-levelled to WARNING with the reason, tracked
for ``/healthz``."""

from __future__ import annotations

import logging

import pytest

from cohabit.operator.logs import FORMAT, ObjectFormatter, PauseMonitor, obj


def record(msg, level=logging.INFO, **extra):
    rec = logging.LogRecord("x", level, __file__, 1, msg, None, None)
    rec.__dict__.update(extra)
    return rec


@pytest.mark.parametrize(
    ("extra", "prefix"),
    [(obj("ns", "sd"), "[ns/sd] "), (obj("", "gold"), "[gold] "),
     ({"k8s_ref": {"namespace": "ns", "name": "db", "kind": "DatabaseWorkload"}}, "[ns/db] "),
     ({}, "")],
    ids=["cohabit", "cluster-scoped", "kopf", "none"],
)
def test_formatter_names_the_object(extra, prefix):
    line = ObjectFormatter(FORMAT).format(record("reconciled", **extra))
    assert line.endswith(f"x: {prefix}reconciled")


# The lines kopf 1.45 writes in kopf/_cogs/clients/watching.py (DEBUG).
PAUSED = ("Pausing the watch-stream for gpuworkloads.v1alpha1.cohabit.io cluster-wide "
          "(blockers: peering CRD is missing).")
PAUSED_PEER = ("Pausing the watch-stream for placementpolicies.v1alpha1.cohabit.io "
               "cluster-wide (blockers: cohabit@None).")
RESUMED = ("Resuming the watch-stream for gpuworkloads.v1alpha1.cohabit.io cluster-wide "
           "(resolved: peering CRD is missing).")


def test_pause_lines_become_warnings_and_are_tracked():
    monitor = PauseMonitor("cohabit")
    rec = record(PAUSED, logging.DEBUG)
    assert monitor.filter(rec) and rec.levelno == logging.WARNING
    assert "--standalone" in rec.getMessage()
    peer = record(PAUSED_PEER, logging.DEBUG)
    assert monitor.filter(peer) and "another cohabit operator" in peer.getMessage()
    assert set(monitor.snapshot()) == {"gpuworkloads.v1alpha1.cohabit.io",
                                       "placementpolicies.v1alpha1.cohabit.io"}
    resumed = record(RESUMED, logging.DEBUG)
    assert monitor.filter(resumed) and resumed.levelno == logging.INFO
    assert set(monitor.snapshot()) == {"placementpolicies.v1alpha1.cohabit.io"}


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_other_debug_lines_only_when_verbose(verbose):
    monitor = PauseMonitor(verbose=verbose)
    assert monitor.filter(record("Starting the watch-stream for pods", logging.DEBUG)) is verbose
    assert monitor.filter(record("a warning", logging.WARNING))
