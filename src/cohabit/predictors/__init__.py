"""cohabit.predictors: right-sizing, interference, peak and correlation predictors.

scikit-learn stays inside this package: the planner, placement and operator use the plain
callables (:func:`recommend`, :func:`interference`, ...) that take and return pandas/numpy
values and :mod:`cohabit.model` types.
"""

from .api import InterferencePredictor, interference_predictor, recommend
from .interference import InterferenceModel, probe_profile
from .peaks import QuantileForecaster, colocation_score, pp_forecast
from .pressure import PodCapacity, PressureEstimate, measured_pressure  # noqa: F401 (export)
from .rightsizing import JustEnoughEstimator
from .selection import FleetSelection, select_operating_points
from .telemetry_data import TelemetryDataError, load_genai
from .vpa import VpaRecommender

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
