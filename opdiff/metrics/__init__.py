"""Layer 5: metrics between samples, scores and densities."""
from .divergences import fisher_divergence, held_out_log_likelihood, sliced_wasserstein
from .mmd import median_bandwidth, mmd_squared

__all__ = ["mmd_squared", "median_bandwidth", "sliced_wasserstein", "fisher_divergence", "held_out_log_likelihood"]
