"""The predictors' own ridge solver agrees with scikit-learn's Ridge (sparse and dense)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import random as sparse_random
from sklearn.linear_model import Ridge

from routerwise.errors import InputError
from routerwise.predict import ridge
from routerwise.predict.ridge import fit_ridge
from routerwise.predict.text_features import fit_transform_features
from tests.predict.synthetic_text import synthetic_workload


def _problem(sparse: bool) -> tuple[object, np.ndarray]:
    rng = np.random.default_rng(0)
    x = sparse_random(400, 900, density=0.02, random_state=1, format="csr") * 3.0
    w = rng.normal(size=(900, 3))
    y = np.asarray(x @ w) + 0.5 + rng.normal(0, 0.1, size=(400, 3))
    return (x if sparse else x.toarray()[:, :60]), y


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("alpha", [0.3, 10.0])
def test_matches_scikit_learn(sparse: bool, alpha: float, monkeypatch: pytest.MonkeyPatch,
                              ) -> None:
    x, y = _problem(sparse)
    ref = Ridge(alpha=alpha, tol=1e-12, solver="sparse_cg" if sparse else "cholesky").fit(x, y)
    scale = np.abs(ref.predict(x)).max()
    # at the default tolerance the fitted values agree to 1e-3 of their scale
    coef, intercept = fit_ridge(x, y, alpha)
    assert np.abs(np.asarray(x @ coef.T) + intercept - ref.predict(x)).max() < 1e-3 * scale
    # solved to convergence, the coefficients themselves agree
    monkeypatch.setattr(ridge, "RTOL", 1e-11)
    coef, intercept = fit_ridge(x, y, alpha)
    np.testing.assert_allclose(coef, ref.coef_, atol=1e-6)
    np.testing.assert_allclose(intercept, ref.intercept_, atol=1e-6)


def test_a_warm_start_reaches_the_same_solution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ridge, "RTOL", 1e-11)
    x, y = _problem(True)
    cold = fit_ridge(x, y, 1.0)
    warm = fit_ridge(x, y, 1.0, start=fit_ridge(x, y, 10.0)[0])
    np.testing.assert_allclose(warm[0], cold[0], atol=1e-6)
    with pytest.raises(InputError, match="warm start has shape"):
        fit_ridge(x, y, 1.0, start=np.zeros((2, 5)))


def test_one_output_and_bad_input() -> None:
    x, y = _problem(True)
    coef, intercept = fit_ridge(x, y[:, 0], 1.0)
    assert coef.shape == (1, 900) and intercept.shape == (1,)
    with pytest.raises(InputError, match="must be positive"):
        fit_ridge(x, y, 0.0)
    with pytest.raises(InputError, match="feature rows"):
        fit_ridge(x, y[:10], 1.0)


def test_training_rows_from_the_fit_equal_the_transform() -> None:
    texts = list(synthetic_workload(200, 0).prompts or ())
    features, matrix = fit_transform_features(texts)
    again = features.transform(texts)
    assert matrix.shape == again.shape
    assert abs(matrix - again).max() < 1e-12
