"""cohabit.predictors: right-sizing, interference, peak and correlation predictors.

scikit-learn stays inside this package: the planner, placement and operator use the plain
callables (:func:`recommend`, :func:`interference`, ...) that take and return pandas/numpy
values and :mod:`cohabit.model` types.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FleetSelection": "selection",
    "InterferenceModel": "interference",
    "InterferencePredictor": "api",
    "JustEnoughEstimator": "rightsizing",
    "PodCapacity": "pressure",
    "PressureEstimate": "pressure",
    "QuantileForecaster": "peaks",
    "TelemetryDataError": "telemetry_data",
    "VpaRecommender": "vpa",
    "colocation_score": "peaks",
    "interference_predictor": "api",
    "load_genai": "telemetry_data",
    "measured_pressure": "pressure",
    "pp_forecast": "peaks",
    "probe_profile": "interference",
    "recommend": "api",
    "select_operating_points": "selection",
}
"""Exported name -> the submodule defining it. Loaded on first use (PEP 562), so importing one
submodule (``cohabit.predictors.telemetry_data``, as the CLI does) does not import
scikit-learn, SciPy and statsmodels."""

__all__ = [
    "FleetSelection",
    "InterferenceModel",
    "InterferencePredictor",
    "JustEnoughEstimator",
    "QuantileForecaster",
    "colocation_score",
    "interference_predictor",
    "pp_forecast",
    "probe_profile",
    "TelemetryDataError",
    "VpaRecommender",
    "load_genai",
    "recommend",
    "select_operating_points",
]


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first access."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
