"""Layer 4: samplers for the reverse dynamics and the geometry of their trajectories.

Every reverse-time integrator is a plain function with one signature (k-diffusion style)::

    sample_xxx(model, x, grid, *, rng=None, callback=None, progress=False, record=False, **options) -> Trajectory

The VE-form solvers take ``denoiser(x, sigma) = E[x_0 | x]`` in the VE form ``x = x_0 + sigma eps`` and a
noise-level grid; the process-form ones a score, a process-time grid and ``process=``. By default a run
keeps only its final samples (``Trajectory.x``) and its NFE: memory does not grow with the number of
steps. ``record=True`` keeps the sampling and denoising trajectories; a callback sees every step. Any scalar Gaussian
process (VP, OU, BM, VE) reaches that form through :class:`VEDenoiser` (``y = x_t / a(t)``,
``sigma = s(t)``); any process, scalar or not (CLD, MALDA, ...), can also be integrated in its own
time with :func:`sample_probability_flow` and :func:`sample_reverse_sde` given a score callable.
"""
from .trajectory import RECORDABLE, Trajectory
from .schedules import (
    GRIDS, edm_sigmas, get_grid, gits_schedule, log_snr_grid, polynomial_grid, quadratic_grid, uniform_grid,
)
from .euler import sample_euler
from .heun import EDM_CHURN, sample_edm_stochastic, sample_heun
from .dpm_solver import sample_dpm_solver_2, sample_dpm_solver_pp_2m, sample_dpm_solver_pp_2m_sde
from .ancestral import ancestral_step, sample_euler_ancestral
from .ipndm import adams_bashforth_coefficients, sample_ipndm
from .ode_jump import sample_ode_jump
from .sde import sample_euler_maruyama, sample_predictor_corrector, sample_reverse_sde
from .process_form import ProcessDynamics, StiffGridWarning, VEDenoiser, sample_probability_flow
from .ddim import sample_ddim
from .flow import integrate_flow
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

#: The stochastic VE-form samplers by name (same signature; ``rng`` drives their noise).
SDE_SOLVERS = {
    "euler_maruyama": sample_euler_maruyama,
    "predictor_corrector": sample_predictor_corrector,
    "euler_ancestral": sample_euler_ancestral,
    "edm_stochastic": sample_edm_stochastic,
    "dpm_solver_pp_2m_sde": sample_dpm_solver_pp_2m_sde,
}

#: Every VE-form solver by name.
SOLVERS = {**ODE_SOLVERS, **SDE_SOLVERS}

__all__ = [
    "Trajectory", "RECORDABLE", "GRIDS", "get_grid", "uniform_grid", "polynomial_grid", "edm_sigmas", "log_snr_grid",
    "quadratic_grid", "gits_schedule", "sample_euler", "sample_heun", "sample_dpm_solver_2",
    "sample_dpm_solver_pp_2m", "sample_ipndm", "adams_bashforth_coefficients", "sample_ode_jump",
    "sample_euler_maruyama", "sample_predictor_corrector", "sample_reverse_sde", "ProcessDynamics",
    "VEDenoiser", "sample_probability_flow", "FiniteDifferenceStep", "euler_convex_combination",
    "finite_difference_form", "taylor_step", "NearestNeighbour", "chord_deviation", "discrete_curvature",
    "distance_to_end", "log_density_along", "mean_shift_increments", "nearest_neighbour", "noise_end_cosine",
    "projection_error", "trajectory_statistics", "ODE_SOLVERS", "DEFAULT_SOLVERS", "convergence_study",
    "reference_solution", "sample_euler_ancestral", "ancestral_step", "sample_edm_stochastic", "EDM_CHURN",
    "sample_dpm_solver_pp_2m_sde", "sample_ddim", "StiffGridWarning", "SDE_SOLVERS", "SOLVERS", "integrate_flow",
]

# Manifold samplers (opdiff/sampling/manifold.py) are exported below:
# add `from .manifold import ...` lines here and extend __all__.
from .manifold import sample_manifold_probability_flow, sample_manifold_reverse_sde, uniform_time_grid  # noqa: E402

__all__ += ["sample_manifold_reverse_sde", "sample_manifold_probability_flow", "uniform_time_grid"]

# Probability-flow log-likelihood of a score model (opdiff/sampling/likelihood.py).
from .likelihood import LogLikelihood, log_likelihood  # noqa: E402

__all__ += ["LogLikelihood", "log_likelihood"]
