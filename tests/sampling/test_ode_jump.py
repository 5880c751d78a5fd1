"""ODE jump: stop after k steps and return the denoised output."""
import numpy as np
import pytest

import opdiff.sampling as S


def test_jump_is_the_denoised_output_of_the_point_reached(mixture):
    x0 = 10.0 * np.random.default_rng(0).standard_normal((20, 2))
    sigmas = S.edm_sigmas(12, 0.01, 10.0)
    full = S.sample_heun(mixture, x0, sigmas, record=True)
    for k in (0, 4, 11):
        jump = S.sample_ode_jump(mixture, x0, sigmas, jump_step=k, solver=S.sample_heun, record=True)
        np.testing.assert_array_equal(jump.samples[: k + 1], full.samples[: k + 1])
        np.testing.assert_allclose(jump.x, mixture(full.samples[k], sigmas[k]), rtol=1e-14)
        assert jump.sigmas[-1] == 0.0 and len(jump.sigmas) == k + 2 and jump.samples.shape[0] == k + 2
    assert S.sample_ode_jump(mixture, x0, sigmas).extras["jump_step"] == 11  # last positive level


def test_denoising_trajectory_gets_there_first(mixture):
    """Chen et al.'s observation 3: D(x_k) is closer to the final sample than x_k is."""
    x0 = 10.0 * np.random.default_rng(1).standard_normal((200, 2))
    sigmas = S.edm_sigmas(30, 0.002, 10.0)
    trajectory = S.sample_heun(mixture, x0, sigmas, record=True)
    end = trajectory.x
    for k in range(1, 25, 4):
        jump_error = np.linalg.norm(trajectory.denoised[k] - end, axis=1).mean()
        sample_error = np.linalg.norm(trajectory.samples[k] - end, axis=1).mean()
        assert jump_error < sample_error, k


def test_bad_jump_step(mixture):
    x0 = np.zeros((2, 2))
    with pytest.raises(ValueError, match="jump_step"):
        S.sample_ode_jump(mixture, x0, [2.0, 1.0, 0.0], jump_step=2)
    with pytest.raises(ValueError, match="jump_step"):
        S.sample_ode_jump(mixture, x0, [2.0, 1.0], jump_step=1.5)
