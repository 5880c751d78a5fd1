"""Trajectory diagnostics against independent constructions (cross products, circles, sklearn PCA,
brute-force nearest neighbours)."""
import numpy as np
import pytest

import opdiff.sampling as S


def test_chord_deviation_against_the_2d_cross_product():
    rng = np.random.default_rng(0)
    points = rng.standard_normal((7, 5, 2))
    a, b = points[0], points[-1]
    chord = b - a
    cross = np.abs(chord[None, :, 0] * (points - a)[..., 1] - chord[None, :, 1] * (points - a)[..., 0])
    np.testing.assert_allclose(S.chord_deviation(points), cross / np.linalg.norm(chord, axis=1), atol=1e-12)
    line = a[None] + np.linspace(0, 1, 7)[:, None, None] * chord[None]
    np.testing.assert_allclose(S.chord_deviation(line), 0.0, atol=1e-12)
    np.testing.assert_allclose(S.distance_to_end(line), np.linspace(1, 0, 7)[:, None] * np.linalg.norm(chord, axis=1),
                               atol=1e-12)


def test_projection_error_against_sklearn_pca():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(1)
    basis, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    plane = rng.standard_normal((12, 3, 2)) * [3.0, 1.0]
    points = plane @ basis[:2] + 5.0
    np.testing.assert_allclose(S.projection_error(points), 0.0, atol=1e-7)
    points = points + 0.1 * rng.standard_normal(points.shape)
    errors = S.projection_error(points)
    for j in range(3):
        pca = PCA().fit(points[:, j])
        expected = np.sqrt(1 - pca.explained_variance_ratio_[:2].sum())
        assert np.isclose(errors[j], expected, rtol=1e-8)


def test_discrete_curvature_of_circles_and_lines():
    angles = np.linspace(0, 1.5, 9)
    for radius in (0.5, 3.0):
        circle = np.stack([radius * np.cos(angles), radius * np.sin(angles), np.zeros(9)], axis=1)[:, None]
        np.testing.assert_allclose(S.discrete_curvature(circle), 1 / radius, rtol=1e-10)
    line = np.linspace(0, 1, 5)[:, None, None] * np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(S.discrete_curvature(line), 0.0, atol=1e-7)


def test_noise_direction_is_radial_for_gaussian_data():
    """With a linear denoiser D = c x the Euler trajectory is a ray towards the origin, so the noise
    direction and x_t - x_end are parallel: cosine 1."""
    denoiser = lambda x, s: 0.25 / (0.25 + s**2) * x  # noqa: E731
    trajectory = S.sample_euler(denoiser, 4.0 * np.random.default_rng(2).standard_normal((5, 3)),
                                S.polynomial_grid(8, 0.1, 4.0), record=True)
    cosine = S.noise_end_cosine(trajectory)
    assert cosine.shape == (8, 5)
    np.testing.assert_allclose(cosine[:-1], 1.0, atol=1e-12)
    stats = S.trajectory_statistics(trajectory)
    assert stats["relative_deviation"] < 1e-12 and stats["projection_error"] < 1e-7


def test_nearest_neighbour_chunked_equals_brute_force():
    rng = np.random.default_rng(3)
    data, queries = rng.standard_normal((300, 20)), rng.standard_normal((50, 20))
    brute = np.linalg.norm(queries[:, None] - data[None], axis=-1)
    result = S.nearest_neighbour(queries, data, chunk_bytes=1024)  # forces one row per block
    np.testing.assert_array_equal(result.index, brute.argmin(1))
    np.testing.assert_allclose(result.distance, brute.min(1), rtol=1e-10)


def test_bad_inputs():
    with pytest.raises(ValueError, match="trajectory"):
        S.chord_deviation(np.zeros((1, 3, 2)))
    with pytest.raises(ValueError, match="trajectory"):
        S.chord_deviation(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="curvature"):
        S.discrete_curvature(np.zeros((2, 3, 2)))
    with pytest.raises(ValueError, match="n_components"):
        S.projection_error(np.zeros((4, 3, 2)), n_components=0)
    with pytest.raises(ValueError, match="data"):
        S.nearest_neighbour(np.zeros((2, 3)), np.zeros((4, 2)))
    with pytest.raises(TypeError, match="trajectory"):
        S.noise_end_cosine(np.zeros((4, 3, 2)))


def test_invariance_under_rigid_motions():
    """Chord deviation, distance to the end, curvature and the projection error do not change under a
    rotation plus translation of the whole trajectory (property test over random trajectories)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=25, deadline=None)
    @given(st.integers(0, 2**31 - 1), st.integers(3, 9), st.integers(2, 6))
    def check(seed, length, dim):
        rng = np.random.default_rng(seed)
        points = rng.standard_normal((length, 3, dim))
        rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        moved = points @ rotation.T + rng.standard_normal(dim)
        for function in (S.chord_deviation, S.distance_to_end, S.discrete_curvature, S.projection_error):
            np.testing.assert_allclose(function(moved), function(points), rtol=1e-8, atol=1e-9)
        error = S.projection_error(points)
        assert np.all((error >= 0) & (error <= 1))

    check()
