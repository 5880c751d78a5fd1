"""convergence_study / reference_solution, checked against the solvers run by hand and a closed form."""
import numpy as np
import pytest

import opdiff.sampling as S


def test_reference_solution_of_gaussian_data_is_closed_form():
    """Gaussian data N(0, c^2): D = c^2/(c^2+s^2) y, and the flow is y(s) = y(S) sqrt((c^2+s^2)/(c^2+S^2))."""
    c2 = 0.3
    y = np.random.default_rng(0).standard_normal((4, 3))
    out = S.reference_solution(lambda x, s: c2 / (c2 + s**2) * x, y, 5.0, 0.1)
    np.testing.assert_allclose(out, y * np.sqrt((c2 + 0.01) / (c2 + 25.0)), rtol=1e-10)


def test_convergence_study_matches_manual_runs(mixture):
    x0 = 5.0 * np.random.default_rng(1).standard_normal((6, 2))
    reference = S.reference_solution(mixture, x0, 5.0, 0.1)
    study = S.convergence_study(mixture, x0, [8, 16, 32], sigma_min=0.1, sigma_max=5.0,
                                solvers={"heun": (S.sample_heun, {})})
    manual = [np.abs(S.sample_heun(mixture, x0, S.polynomial_grid(n, 0.1, 5.0, rho=7.0)).x - reference).max()
              for n in (8, 16, 32)]
    np.testing.assert_allclose(study["heun"]["error"], manual, rtol=1e-6)  # reference solves agree to ~1e-10
    assert study["heun"]["nfe"] == [16, 32, 64] and 1.5 < study["heun"]["slope"] < 2.5
    assert set(S.convergence_study(mixture, x0, [4, 8], sigma_min=0.1, sigma_max=5.0)) == set(S.DEFAULT_SOLVERS)


def test_bad_inputs(mixture):
    with pytest.raises(ValueError, match="steps"):
        S.convergence_study(mixture, np.zeros((2, 2)), [8], sigma_min=0.1, sigma_max=5.0)
    with pytest.raises(ValueError, match="sigma_min"):
        S.reference_solution(mixture, np.zeros((2, 2)), 1.0, 2.0)
