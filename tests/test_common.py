"""scikit-learn's estimator checks, every one, with no expected failures."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skcallback import NeuralClassifier, NeuralRegressor


@parametrize_with_checks([NeuralRegressor(random_state=0), NeuralClassifier(random_state=0)])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
