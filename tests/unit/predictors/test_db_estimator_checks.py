"""scikit-learn's estimator checks on the database predictors (honest expected failures)."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from cohabit.predictors.dbcurve import AllocationCurve
from cohabit.predictors.dbonline import LoadAwareCurve


def _expected_failures(estimator) -> dict[str, str]:
    return {}


@parametrize_with_checks([AllocationCurve(), LoadAwareCurve(max_iter=10)],
                         expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)
