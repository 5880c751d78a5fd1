"""Processes, test functions and Gauss-Hermite quadrature shared by the operator tests."""
import itertools

import numpy as np
import pytest

from opdiff.operators import Exponential, GaussianBump, PlaneWave, Polynomial, Quadratic

from opdiff.processes import VESDE, VPSDE, BrownianMotion, OrnsteinUhlenbeck
from opdiff.processes.linear import StationaryLinearSDE

PROCESSES = {
    "bm": lambda: BrownianMotion(sigma=1.3),
    "ou": lambda: OrnsteinUhlenbeck(theta=0.7),
    "ve": lambda: VESDE(sigma_min=0.1, sigma_max=5.0),
    "ve_edm": lambda: VESDE.edm(sigma_max=10.0),
    "vp_linear": lambda: VPSDE(),
    "vp_cosine": lambda: VPSDE(schedule="cosine"),
    "cld": lambda: StationaryLinearSDE.cld(),
}


@pytest.fixture(params=sorted(PROCESSES))
def process(request):
    return PROCESSES[request.param]()


@pytest.fixture
def process_table():
    """Constructors of the shared processes by name."""
    return PROCESSES


@pytest.fixture
def smooth_functions():
    """One test function of each kind on R^2 (data R^2 for scalar processes, R^1 x R^1 for CLD)."""
    return {
        "polynomial": Polynomial([0.5, -1.0, 0.3, 2.0], [[2, 1], [0, 3], [1, 1], [0, 0]]),
        "quadratic": Quadratic([[1.0, 0.4], [0.4, 2.0]], b=[0.3, -0.5], c=1.0),
        "exponential": Exponential([0.3, -0.2]),
        "plane_wave": PlaneWave([0.8, -1.1]),
        "bump": GaussianBump([0.2, -0.4], [[1.5, 0.3], [0.3, 0.8]]),
    }


@pytest.fixture
def gauss_hermite():
    """``expectation(function, mean (D,), cov (D, D), nodes_per_axis=40)``: E function(Y), Y ~ N(mean, cov), by
    tensor Gauss-Hermite quadrature (spectrally accurate for smooth integrands; ``function`` takes ``(m, D)``)."""

    def expectation(function, mean, cov, nodes_per_axis=40):
        nodes, weights = np.polynomial.hermite_e.hermegauss(nodes_per_axis)
        weights = weights / np.sqrt(2 * np.pi)
        D = len(mean)
        values, vectors = np.linalg.eigh(cov)
        factor = vectors * np.sqrt(np.clip(values, 0, None))
        grid = np.array(list(itertools.product(nodes, repeat=D)))
        grid_weights = np.prod(np.array(list(itertools.product(weights, repeat=D))), axis=1)
        return np.sum(grid_weights * function(mean + grid @ factor.T))

    return expectation
