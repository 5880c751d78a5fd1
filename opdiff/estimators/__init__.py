"""Layer 4: estimators (scikit-learn contract: hyper-parameters in __init__, fit returns self)."""
from .kernel_smoother import DiffusionKernelSmoother

__all__ = ["DiffusionKernelSmoother"]
# Other estimators register below (one import line each).
