"""Layer 3: operators acting on test functions (generator, semigroup) and on empirical measures (KME)."""
from .kme import KernelMeanEmbedding, KernelMixture, normalised_log_weights
from .generator import (Exponential, GaussianBump, Generator, PlaneWave, Polynomial, Quadratic, SmoothFunction,
                        finite_difference_derivatives)
from .semigroup import Expectation, Semigroup

__all__ = ["KernelMeanEmbedding", "KernelMixture", "normalised_log_weights", "Generator", "Semigroup",
           "Expectation", "SmoothFunction", "Polynomial", "Quadratic", "Exponential", "PlaneWave", "GaussianBump",
           "finite_difference_derivatives"]
