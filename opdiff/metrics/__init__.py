"""Layer 5: metrics between samples, scores and densities."""
from .divergences import fisher_divergence, held_out_log_likelihood, sliced_wasserstein
from .mmd import median_bandwidth, mmd_squared

__all__ = ["mmd_squared", "median_bandwidth", "sliced_wasserstein", "fisher_divergence", "held_out_log_likelihood"]
# Further metrics register below (one import line each).
from .frechet import (DigitsClassifier, frechet_digits_distance, frechet_distance, frechet_standard_error,  # noqa: E402
                      pixel_diversity, vendi_score)
__all__ += ["DigitsClassifier", "frechet_digits_distance", "frechet_distance", "frechet_standard_error",
            "pixel_diversity", "vendi_score"]
from .likelihood import LogitTransform, bits_per_dim, dequantize  # noqa: E402
__all__ += ["LogitTransform", "bits_per_dim", "dequantize"]
