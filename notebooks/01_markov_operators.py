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
# # 01 Markov operators: semigroup, generator and the KME solution
#
# A forward noising process is a Markov semigroup $P_{s,t} f(x) = \mathbb E[f(X_t) \mid X_s = x]$ with
# generator $L_t f = b\cdot\nabla f + \tfrac12 \operatorname{tr}(a\, \nabla^2 f)$, $a = G G^\top$
# (probabilists' convention: $dX = b\,dt + G\,dW$). This notebook works the three operators of
# `opdiff.operators` on a 1-D Gaussian mixture under the Ornstein-Uhlenbeck process
# $dX = -X\,dt + \sqrt 2\, dW$ (stationary law $N(0, 1)$, $L = \partial_x^2 - x\,\partial_x$):
#
# 1. the semigroup in closed form, against Monte Carlo;
# 2. the generator as $\frac{d}{dt} P_t f\,|_{t=0}$, and the carré du champ $\Gamma(f, g) = \tfrac12 f' a g'$;
# 3. the kernel-mean-embedding solution $\rho_t = P_t^* \rho_N$ of the forward equation, whose score is the
#    diffusion kernel smoother (DKS), against the exact forward marginal of the mixture.

# %%
import numpy as np
import matplotlib.pyplot as plt

from opdiff.datasets import GaussianMixture
from opdiff.estimators import DiffusionKernelSmoother
from opdiff.operators import (GaussianBump, Generator, KernelMeanEmbedding, PlaneWave, Polynomial, Semigroup)
from opdiff.processes import OrnsteinUhlenbeck

process = OrnsteinUhlenbeck(theta=1.0, T=3.0)
mixture = GaussianMixture([0.6, 0.4], [[-1.5], [1.5]], [0.15, 0.3])
P, L = Semigroup(process), Generator(process)

# %% [markdown]
# ## 1. The semigroup
#
# For a Gaussian process $X_t \mid X_s = x \sim N(\Phi x, \Sigma)$, so plane waves, Gaussian bumps and
# polynomials have closed-form expectations. Hermite polynomials are eigenfunctions of the OU semigroup
# (Mehler): $P_t \mathrm{He}_2 = e^{-2t} \mathrm{He}_2$. Any other callable goes through Monte Carlo,
# which returns its standard error.

# %%
x = np.array([[-2.0], [-0.5], [0.3], [1.7], [2.5]])
he2 = Polynomial([1.0, -1.0], [[2], [0]])
t = 0.7
print("P_t He_2 / He_2      :", np.round(P(he2, x, t).value / he2(x), 12), " e^{-2t} =", round(np.exp(-2 * t), 12))
wave = PlaneWave([2.0])
exact = P(wave, x, t)
mc = P(lambda y: np.exp(2j * y[:, 0]), x, t, rng=0, n_samples=20000)
print("plane wave, closed   :", np.round(exact.value, 4))
print("plane wave, MC       :", np.round(mc.value, 4))
print("|difference| / stderr:", np.round(np.abs(mc.value - exact.value) / mc.stderr, 2))

# %% [markdown]
# ## 2. The generator
#
# $L f = \lim_{t\to 0} (P_t f - f)/t$. For the bump $f(x) = e^{-(x-c)^2/2w^2}$ the generator is exact
# (the test function carries its derivatives); a second-order one-sided difference of the closed-form
# semigroup in $t$ reproduces it. A plain callable is differentiated by central finite differences (about
# $10^{-7}$ relative accuracy).

# %%
bump = GaussianBump([0.5], 0.8)
grid = np.linspace(-3, 3, 7)[:, None]
h = 1e-4
values = [P(bump, grid, k * h).value if k else bump(grid) for k in range(3)]
derivative = (-3 * values[0] + 4 * values[1] - values[2]) / (2 * h)
print("L f (exact)         :", np.round(L(bump, grid, 0.0), 6))
print("d/dt P_t f at t = 0 :", np.round(derivative, 6))
print("L f (finite diff.)  :", np.round(L(lambda y: bump(y), grid, 0.0), 6))
gamma = L.carre_du_champ(bump, he2, grid, 0.0)
defect = 0.5 * (L(lambda y: bump(y) * he2(y), grid, 0.0) - bump(grid) * L(he2, grid, 0.0) - he2(grid) * L(bump, grid, 0.0))
print("max |Gamma - (L(fg) - f Lg - g Lf)/2| =", float(np.max(np.abs(gamma - defect))))

# %% [markdown]
# ## 3. The KME solution of the forward equation
#
# With the empirical measure $\rho_N = \frac1N\sum_i \delta_{x_i}$, the forward marginal is
# $\rho_t = P_t^*\rho_N = \frac1N \sum_i N(\Phi x_i, \Sigma)$: a kernel mean embedding, with the identity
# $\mathbb E_{\rho_t}[f] = \mathbb E_{\rho_N}[P_t f]$ (expectations move to the data). Its score is the DKS. As
# $N$ grows it approaches the exact forward marginal of the mixture.

# %%
X = mixture.sample(2000, rng=1)
kme = KernelMeanEmbedding(process).fit(X)
t = 0.3
moved = P(bump, X, t).value.mean()                                   # E_{rho_N}[P_t f]
pushed = bump(kme.sample(200000, t, rng=2)).mean()                   # E_{rho_t}[f] by sampling rho_t
print(f"E_rho_N[P_t f] = {moved:.4f}   E_rho_t[f] (200k samples) = {pushed:.4f}")

dks = DiffusionKernelSmoother(process).fit(X)
z = np.linspace(-4, 4, 400)[:, None]
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
for t, colour in zip([0.05, 0.3, 1.0], ["C0", "C1", "C2"]):
    axes[0].plot(z[:, 0], np.exp(mixture.log_density(z, t, process)), colour, label=f"exact, t={t}")
    axes[0].plot(z[:, 0], np.exp(dks.log_density(z, t)), colour + "--")
    axes[1].plot(z[:, 0], mixture.score(z, t, process)[:, 0], colour)
    axes[1].plot(z[:, 0], dks.score(z, t)[:, 0], colour + "--")
    fisher = np.mean((dks.score(z, t) - mixture.score(z, t, process)) ** 2 * np.exp(mixture.log_density(z, t, process))[:, None]) * 8
    print(f"t={t}: Fisher divergence of the DKS score = {fisher:.2e}")
axes[0].set_title("density: exact (solid), KME / DKS (dashed)")
axes[1].set_title("score")
axes[0].legend(fontsize=7)
fig.tight_layout()
