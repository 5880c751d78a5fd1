"""Time grids and the GITS dynamic-programming schedule."""
import itertools

import numpy as np
import pytest

import opdiff.sampling as S


@pytest.mark.parametrize("kind", sorted(S.GRIDS))
def test_grids_are_decreasing_with_the_right_ends(kind):
    grid = S.get_grid(kind, 10, 0.01, 5.0)
    assert grid.shape == (11,) and grid[0] == 5.0 and grid[-1] == 0.01 and np.all(np.diff(grid) < 0)
    zero = S.get_grid(kind, 10, 0.01, 5.0, append_zero=True)
    assert zero.shape == (11,) and zero[-1] == 0.0 and zero[-2] == 0.01 and zero[0] == 5.0


def test_each_grid_is_uniform_in_its_own_variable():
    low, high = 0.002, 80.0
    # rho-polynomial: uniform in sigma^(1/rho)
    assert np.allclose(np.diff(S.polynomial_grid(12, low, high, rho=7.0) ** (1 / 7)),
                       (low ** (1 / 7) - high ** (1 / 7)) / 12, rtol=1e-10)
    # log-SNR = -2 log sigma: uniform
    assert np.allclose(np.diff(-2 * np.log(S.log_snr_grid(12, low, high))), 2 * np.log(high / low) / 12, rtol=1e-12)
    # quadratic: uniform in sqrt((t - low) / (high - low))
    q = S.quadratic_grid(12, low, high)
    assert np.allclose(np.diff(np.sqrt((q - low) / (high - low))), -1 / 12, rtol=1e-10)
    np.testing.assert_allclose(S.polynomial_grid(9, 0.1, 2.0, rho=1.0), S.uniform_grid(9, 0.1, 2.0), rtol=1e-14)
    edm = S.edm_sigmas(18)  # EDM defaults: 0.002 .. 80, rho = 7, jump to 0 at the end
    assert edm.shape == (19,) and edm[0] == 80.0 and edm[-2] == 0.002 and edm[-1] == 0.0


def test_bad_grid_arguments():
    with pytest.raises(ValueError, match="n_steps"):
        S.uniform_grid(0, 0.1, 1.0)
    with pytest.raises(ValueError, match="high"):
        S.uniform_grid(3, 1.0, 0.1)
    with pytest.raises(ValueError, match="low"):
        S.log_snr_grid(3, 0.0, 1.0)
    with pytest.raises(ValueError, match="kind"):
        S.get_grid("cosine", 3, 0.1, 1.0)
    with pytest.raises(ValueError, match="rho"):
        S.polynomial_grid(3, 0.1, 1.0, rho=-1)


def test_gits_dynamic_programming_equals_brute_force(mixture):
    """The DP optimum equals exhaustive search over all sub-grids, with the costs rebuilt independently
    by running one Euler step of the solver from each teacher point."""
    rng = np.random.default_rng(0)
    teacher_sigmas = S.polynomial_grid(9, 0.05, 10.0)
    x = 10.0 * rng.standard_normal((16, 2))
    teacher = S.sample_heun(mixture, x, teacher_sigmas, record=True)
    n_steps, coeff, n = 3, 1.15, len(teacher_sigmas) - 1

    def cost(i, j):
        jump = S.sample_euler(mixture, teacher.samples[i], [teacher_sigmas[i], teacher_sigmas[j]]).x
        return np.mean(np.linalg.norm(jump - teacher.samples[j], axis=1))

    best, best_path = np.inf, None
    for middle in itertools.combinations(range(1, n), n_steps - 1):
        path = (0,) + middle + (n,)
        total = sum(coeff**k * cost(a, b) for k, (a, b) in enumerate(zip(path[:-1], path[1:])))
        if total < best:
            best, best_path = total, path
    schedule = S.gits_schedule(mixture, x, n_steps, teacher=teacher, coeff=coeff)
    np.testing.assert_array_equal(schedule, teacher_sigmas[list(best_path)])


def test_gits_default_teacher_and_use(mixture):
    rng = np.random.default_rng(1)
    pilots = 80.0 * rng.standard_normal((8, 2))
    schedule = S.gits_schedule(mixture, pilots, 6)
    assert schedule.shape == (7,) and schedule[0] == 80.0 and np.isclose(schedule[-1], 0.002)
    assert np.all(np.diff(schedule) < 0)
    # the schedule drives any solver
    assert S.sample_euler(mixture, 80.0 * rng.standard_normal((4, 2)), schedule).nfe == 6
    with pytest.raises(ValueError, match="n_steps"):
        S.gits_schedule(mixture, pilots, 100)
    with pytest.raises(ValueError, match="cost"):
        S.gits_schedule(mixture, pilots, 3, cost="dev")
