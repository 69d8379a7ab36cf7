"""A replay of NVML readings behind the pynvml call names (the fixture is synthesised; see
its ``_provenance``). Errors are pynvml's own exception classes."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pynvml


class ReplayNvml:
    """The subset of the ``pynvml`` module NvmlReader calls, answering from a JSON file."""

    NVMLError = pynvml.NVMLError

    def __init__(self, path: Path, fail_init: int | None = None):
        self.data = json.loads(Path(path).read_text())
        self.fail_init = fail_init
        self.initialised = False

    def nvmlInit(self):
        if self.fail_init is not None:
            raise pynvml.NVMLError(self.fail_init)
        self.initialised = True

    def nvmlShutdown(self):
        self.initialised = False

    def nvmlDeviceGetCount(self):
        return len(self.data["devices"])

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def _dev(self, handle):
        return self.data["devices"][handle]

    def nvmlDeviceGetName(self, handle):
        return self._dev(handle)["name"]

    def nvmlDeviceGetUUID(self, handle):
        return self._dev(handle)["uuid"].encode()  # older bindings return bytes

    def nvmlDeviceGetUtilizationRates(self, handle):
        return SimpleNamespace(**self._dev(handle)["utilization"])

    def nvmlDeviceGetMemoryInfo(self, handle):
        return SimpleNamespace(**self._dev(handle)["memory"])

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        return [SimpleNamespace(**p) for p in self._dev(handle)["processes"]]

    def nvmlDeviceGetProcessUtilization(self, handle, last_seen):
        samples = self._dev(handle)["process_utilization"]
        if samples is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return [SimpleNamespace(**s) for s in samples if s["timeStamp"] > last_seen]
