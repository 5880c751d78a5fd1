"""Layer 4: estimators (scikit-learn contract: hyper-parameters in __init__, fit returns self)."""
from .kernel_smoother import DiffusionKernelSmoother

__all__ = ["DiffusionKernelSmoother"]
# Other estimators register below (one import line each).
from .oism import OISM, IllConditionedWarning, ResidualScore  # noqa: E402
from . import losses, control_variates  # noqa: E402
__all__ += ["OISM", "ResidualScore", "IllConditionedWarning", "losses", "control_variates"]
from . import elbo  # noqa: E402,F401
