# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 Geometry of ODE sampling: annealed mean shift
#
# Any scalar Gaussian process $x_t = a(t)\,(x_0 + \sigma(t)\,\varepsilon)$ reduces to the VE form
# $y = x_t / a(t) = x_0 + \sigma \varepsilon$ (`opdiff.sampling.VEDenoiser`). There the probability-flow ODE is
# $dy/d\sigma = (y - D(y, \sigma))/\sigma$ with the denoiser $D = E[x_0 \mid y]$, and with the **exact empirical
# score** (the diffusion kernel smoother, DKS) $D(y,\sigma) = \sum_i \operatorname{softmax}_i(-|y - x_i|^2/2\sigma^2)\, x_i$
# is one mean-shift step of bandwidth $\sigma$. This notebook measures what that implies:
#
# 1. the Euler step is the convex combination $(\sigma'/\sigma)\, y + (1 - \sigma'/\sigma)\, D(y, \sigma)$, and the
#    second-order solvers are finite differences of the denoising trajectory;
# 2. every step never lowers the smoothed log-density $\log \rho_\sigma$ (mean-shift monotonicity);
# 3. sampling to $\sigma \to 0$ returns training points (memorisation);
# 4. trajectories are quasi-linear and almost planar: a table on 2-D toys and on 8 x 8 digits;
# 5. solver orders with the exact score of a Gaussian mixture, and a GITS schedule.

# %%
import numpy as np
import matplotlib.pyplot as plt

import opdiff.sampling as S
from opdiff.datasets import make_toy
from opdiff.estimators.kernel_smoother import DiffusionKernelSmoother
from opdiff.processes import VESDE
from opdiff.datasets import GaussianMixture
from sklearn.datasets import load_digits

rng = np.random.default_rng(0)
process = VESDE.edm(80.0)                      # sigma(t) = t, scale 1
sigmas = S.edm_sigmas(18)                      # 0.002 .. 80, rho = 7, last jump to 0
toy = make_toy("eight_gaussians", 500, rng=rng)
dks = DiffusionKernelSmoother(process).fit(toy)
D = S.VEDenoiser(process, dks)                 # D(y, sigma), plus D.log_density(y, sigma)

# %% [markdown]
# ## 1. Euler = convex combination; Heun and DPM-Solver-2 = finite differences

# %%
x = 5.0 * rng.standard_normal((200, 2))
euler = S.sample_euler(D, x, [5.0, 2.0]).x
print("Euler vs convex combination :", np.abs(euler - S.euler_convex_combination(x, D(x, 5.0), 5.0, 2.0)).max())
for method, solver in (("heun", S.sample_heun), ("dpm_solver_2", S.sample_dpm_solver_2)):
    fd = S.finite_difference_form(method, D, x, 5.0, 2.0)
    print(f"{method:13s} vs finite-difference form: {np.abs(solver(D, x, [5.0, 2.0]).x - fd.x_next).max():.1e}"
          f"   (t* = {fd.t_star:.3f})")

# %% [markdown]
# ## 2. Mean-shift monotonicity
#
# $\log\rho_{\sigma_i}(y_{i+1}) - \log\rho_{\sigma_i}(y_i) \ge 0$ for every Euler step (a partial mean-shift step),
# over 500 random starts; the log-density is the DKS's own (log-sum-exp over the training set).

# %%
traj = S.sample_euler(D, 80.0 * rng.standard_normal((500, 2)), sigmas, record=True)  # keep the path
inc = S.mean_shift_increments(D.log_density, traj)
print(f"steps checked: {inc.size}, violations: {(inc < -1e-10).sum()}, smallest increment: {inc.min():.2e}")

# %% [markdown]
# ## 3. Memorisation: the samples are training points

# %%
nn = S.nearest_neighbour(traj.x, toy)
print(f"distance to the nearest training point: median {np.median(nn.distance):.1e}, max {nn.distance.max():.1e}")
print("distinct training points reached:", len(np.unique(nn.index)), "of", len(traj.x))

# %% [markdown]
# ## 4. Trajectory statistics (Euler, 18 steps, EDM grid)
#
# `relative deviation`: largest distance of a point from the chord $y_{80} \to y_0$ over the chord length;
# `2-D projection error`: relative residual of the best 2-D PCA plane of a trajectory; the same for the
# denoising trajectory $D(y_{\sigma_i}, \sigma_i)$. (For $d = 2$ a trajectory lies in a plane, so its 2-D error is 0
# by construction; the digits row is the informative one.)

# %%
datasets = {name: make_toy(name, 500, rng=rng) for name in ("eight_gaussians", "two_spirals", "moons", "checkerboard")}
datasets["digits (8 x 8)"] = load_digits().data / 8.0 - 1.0  # pixels [0, 16] -> [-1, 1]
rows = []
for name, data in datasets.items():
    den = S.VEDenoiser(process, DiffusionKernelSmoother(process).fit(data))
    run = S.sample_euler(den, 80.0 * rng.standard_normal((64, data.shape[1])), sigmas, record=True)
    stats = S.trajectory_statistics(run)
    rows.append((name, data.shape[1], stats["end_to_end"], stats["relative_deviation"], stats["projection_error"],
                 stats["denoised_relative_deviation"], stats["denoised_projection_error"]))
header = "| data | d | end-to-end | rel. deviation | 2-D proj. error | denoised rel. dev. | denoised 2-D error |"
lines = [header, "|" + "---|" * 7] + [f"| {r[0]} | {r[1]} | {r[2]:.1f} | {r[3]:.2e} | {r[4]:.2e} | {r[5]:.2e} | {r[6]:.2e} |"
                                    for r in rows]
from IPython.display import Markdown
Markdown("\n".join(lines))

# %% [markdown]
# ## 5. Solver orders with the exact mixture score, and GITS
#
# Error at $\sigma = 0.05$ against a DOP853 solve, EDM grid. The published iPNDM (fixed coefficients,
# lower-order warm start) is second order; with variable-step coefficients and a Runge-Kutta start it
# reaches order 4.

# %%
mixture = GaussianMixture([0.5, 0.3, 0.2], [[-2.0, 0.0], [2.0, 1.0], [0.0, 2.5]], [0.25, 0.16, 0.36])
exact = S.VEDenoiser(process, lambda x, t: mixture.denoise(x, t, process), output="denoiser")
results = S.convergence_study(exact, 10.0 * rng.standard_normal((16, 2)), [16, 32, 64, 128],
                              sigma_min=0.05, sigma_max=10.0)
for name, row in results.items():
    print(f"{name:20s} slope {row['slope']:4.2f}   NFE {row['nfe']}   errors {['%.1e' % e for e in row['error']]}")
fig, ax = plt.subplots(figsize=(4.5, 3.2))
for name, row in results.items():
    ax.loglog(row["nfe"], row["error"], marker="o", ms=3, label=name)
ax.set_xlabel("NFE"); ax.set_ylabel("error"); ax.legend(fontsize=6); plt.show()

# %%
pilots = 80.0 * rng.standard_normal((32, 2))
teacher = S.sample_ipndm(D, pilots, S.edm_sigmas(60, append_zero=False), record=True)
gits = S.gits_schedule(D, pilots, 6, teacher=teacher)
edm = S.polynomial_grid(6, 0.002, 80.0, rho=7.0)
for label, grid in (("EDM rho=7", edm), ("GITS", gits)):
    out = S.sample_euler(D, pilots, grid).x
    print(f"{label:10s} {np.round(grid, 4)}  mean error vs teacher {np.linalg.norm(out - teacher.x, axis=1).mean():.3f}")
