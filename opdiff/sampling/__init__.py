"""Layer 4: samplers for the reverse dynamics and the geometry of their trajectories.

Every VE-form solver is a plain function with one signature (k-diffusion style)::

    sample_xxx(denoiser, x, sigmas, *, rng=None, callback=None, progress=False, **options) -> Trajectory

with ``denoiser(x, sigma) = E[x_0 | x]`` in the VE form ``x = x_0 + sigma eps``. Any scalar Gaussian
process (VP, OU, BM, VE) reaches that form through :class:`VEDenoiser` (``y = x_t / a(t)``,
``sigma = s(t)``); any process, scalar or not (CLD, MALDA, ...), can also be integrated in its own
time with :func:`sample_probability_flow` and :func:`sample_reverse_sde` given a score callable.
"""
from .trajectory import Trajectory
from .schedules import (
    GRIDS, edm_sigmas, get_grid, gits_schedule, log_snr_grid, polynomial_grid, quadratic_grid, uniform_grid,
)
from .euler import sample_euler
from .heun import sample_heun
from .dpm_solver import sample_dpm_solver_2, sample_dpm_solver_pp_2m
from .ipndm import adams_bashforth_coefficients, sample_ipndm
from .ode_jump import sample_ode_jump
from .sde import sample_euler_maruyama, sample_predictor_corrector, sample_reverse_sde
from .process_form import ProcessDynamics, VEDenoiser, sample_probability_flow
from .finite_difference import FiniteDifferenceStep, euler_convex_combination, finite_difference_form, taylor_step
from .convergence import DEFAULT_SOLVERS, convergence_study, reference_solution
from .geometry import (
    NearestNeighbour, chord_deviation, discrete_curvature, distance_to_end, log_density_along, mean_shift_increments,
    nearest_neighbour, noise_end_cosine, projection_error, trajectory_statistics,
)

#: The deterministic VE-form solvers by name (all share the signature above).
ODE_SOLVERS = {
    "euler": sample_euler,
    "heun": sample_heun,
    "dpm_solver_2": sample_dpm_solver_2,
    "dpm_solver_pp_2m": sample_dpm_solver_pp_2m,
    "ipndm": sample_ipndm,
}

__all__ = [
    "Trajectory", "GRIDS", "get_grid", "uniform_grid", "polynomial_grid", "edm_sigmas", "log_snr_grid",
    "quadratic_grid", "gits_schedule", "sample_euler", "sample_heun", "sample_dpm_solver_2",
    "sample_dpm_solver_pp_2m", "sample_ipndm", "adams_bashforth_coefficients", "sample_ode_jump",
    "sample_euler_maruyama", "sample_predictor_corrector", "sample_reverse_sde", "ProcessDynamics",
    "VEDenoiser", "sample_probability_flow", "FiniteDifferenceStep", "euler_convex_combination",
    "finite_difference_form", "taylor_step", "NearestNeighbour", "chord_deviation", "discrete_curvature",
    "distance_to_end", "log_density_along", "mean_shift_increments", "nearest_neighbour", "noise_end_cosine",
    "projection_error", "trajectory_statistics", "ODE_SOLVERS", "DEFAULT_SOLVERS", "convergence_study",
    "reference_solution",
]

# Manifold samplers (opdiff/sampling/manifold.py) are exported below:
# add `from .manifold import ...` lines here and extend __all__.
from .manifold import sample_manifold_probability_flow, sample_manifold_reverse_sde, uniform_time_grid  # noqa: E402

__all__ += ["sample_manifold_reverse_sde", "sample_manifold_probability_flow", "uniform_time_grid"]
