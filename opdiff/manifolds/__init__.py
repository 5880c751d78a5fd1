"""Layer 1: Riemannian manifolds (Euclidean, hypersphere, flat torus) and their heat kernels.

Heat time ``s`` everywhere in this package: the kernel is ``exp(s Laplace-Beltrami)``
(``N(x, 2 s I)`` on ``R^d``). ``ManifoldBrownianMotion`` (``opdiff.processes``) maps its own time
``t`` to ``s = sigma^2 t / 2`` (``dX = sigma dW``, generator ``sigma^2 / 2`` Laplace-Beltrami).
"""
from .base import DEFAULT_ATOL, Manifold
from .euclidean import Euclidean
from .heat_circle import circle_log_heat_kernel, wrap_angle
from .heat_sphere import sphere_area, sphere_log_heat_kernel, switch_time
from .sphere import Hypersphere
from .torus import FlatTorus

__all__ = ["Manifold", "Euclidean", "Hypersphere", "FlatTorus", "DEFAULT_ATOL", "circle_log_heat_kernel",
           "sphere_log_heat_kernel", "sphere_area", "switch_time", "wrap_angle"]
