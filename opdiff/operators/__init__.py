"""Layer 3: operators acting on test functions (generator, semigroup) and on empirical measures (KME)."""
from .kme import GaussianMarginal, KernelMeanEmbedding, normalised_log_weights

__all__ = ["KernelMeanEmbedding", "GaussianMarginal", "normalised_log_weights"]
# Generator and Semigroup register below (one import line each).
