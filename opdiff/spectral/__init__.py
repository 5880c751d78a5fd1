"""Layer 2: generator eigenbases (values, gradients, Laplacians, product expansions)."""
from .base import EigenBasis
from .fourier import Fourier
from .hermite import Hermite, hermite_functions, hermite_linearisation, multi_indices
from .spherical import SphericalHarmonics

__all__ = ["EigenBasis", "Hermite", "Fourier", "SphericalHarmonics", "hermite_functions",
           "hermite_linearisation", "multi_indices"]
