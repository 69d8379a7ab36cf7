"""Integration tier: real servers on loopback (see README.md); helpers in :mod:`.harness`,
:mod:`.operator_support` and :mod:`.eviction_support`."""
