"""Layer 2: forward Markov diffusions (see :mod:`opdiff.processes.base` for the contract)."""
from .base import GaussianPrior, GaussianProcess, GeneratorCoefficients, MarkovProcess, gaussian_logpdf
from .scalar import BrownianMotion, OrnsteinUhlenbeck, ScalarGaussianProcess, VESDE, VPSDE

__all__ = [
    "MarkovProcess", "GaussianProcess", "GaussianPrior", "GeneratorCoefficients", "gaussian_logpdf",
    "ScalarGaussianProcess", "BrownianMotion", "OrnsteinUhlenbeck", "VESDE", "VPSDE",
]
# Other process families register themselves below (one import line each).
from .linear import StationaryLinearSDE  # noqa: E402,F401
from .manifold import ManifoldBrownianMotion, UniformPrior  # noqa: E402,F401
from .fractional import FractionalDiffusion  # noqa: E402,F401
from .spectral_anisotropic import SpectralAnisotropic  # noqa: E402,F401

__all__ += ["StationaryLinearSDE", "ManifoldBrownianMotion", "UniformPrior", "FractionalDiffusion",
            "SpectralAnisotropic"]
