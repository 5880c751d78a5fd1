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
# # 04 Structured forward processes
#
# Three Gaussian forward processes whose transitions are structured operators, so that the diffusion kernel
# smoother (DKS), the samplers and the losses run on them unchanged:
#
# * **SAGD** (spectrally anisotropic Gaussian diffusion): VP scalars times a Fourier-diagonal covariance
#   $\Sigma_w = F^{-1}\,\mathrm{diag}(|w|^2)\,F$ (`FourierDiagonal`, real FFTs, pseudo-inverse for omitted bands);
# * **GFDM** (fractional diffusion): a Markov approximation of fractional Brownian motion by $K$ OU processes driven by
#   one Brownian motion, on the augmented state $(x, y_1, \dots, y_K)$ (`Kron` transitions);
# * **MDM** stationary linear SDEs $dz = -\beta(Q + D)\Sigma_\infty^{-1} z\,dt + \sqrt{2\beta D}\,dW$ (VP, CLD, ALDA,
#   MALDA, learned), with their likelihood bounds.
#
# Every cell checks a formula against an independent route.

# %%
import numpy as np
import matplotlib.pyplot as plt
from scipy.integrate import quad
from scipy.special import gamma as gamma_function

from opdiff.datasets import load_digits_images
from opdiff.estimators import DiffusionKernelSmoother
from opdiff.estimators.elbo import (exact_score_elbo, gaussian_data_score, learn_stationary_sde, mean_elbo,
                                    prior_kl)
from opdiff.linalg import FourierDiagonal
from opdiff.linalg.fourier import power_law_weights, radial_frequency
from opdiff.processes import FractionalDiffusion, SpectralAnisotropic, StationaryLinearSDE
from opdiff.processes.fractional import (fbm_covariance, fbm_variance_constant, mafbm_covariance, mafbm_speeds,
                                         mafbm_weights)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The Fourier-diagonal covariance
#
# `FourierDiagonal` applies $\Sigma_w$ with `rfft2`/`irfft2`. On a small image it must equal the dense
# $F^* \mathrm{diag}(\lambda) F$ built from the unitary DFT matrix; the power-law exponent must be visible in the
# radially averaged spectrum of $\Sigma_w^{1/2}$-coloured noise ($\log \mathrm{PSD} = 2\alpha \log r + c$).

# %%
H = W = 6
lam = rng.uniform(0.2, 2.0, size=(H, W))
F = np.kron(np.fft.fft(np.eye(H)) / np.sqrt(H), np.fft.fft(np.eye(W)) / np.sqrt(W))
dense = (F.conj().T @ np.diag(lam.ravel()) @ F).real
print("max |FFT operator - dense|:", np.abs(FourierDiagonal((1, H, W), lam).dense(H * W) - dense).max())

alpha, size = 0.6, 32
op = FourierDiagonal.from_weights((1, size, size), power_law_weights(size, size, alpha))
noise = op.cholesky().apply(rng.standard_normal((200, size * size)))
psd = np.mean(np.abs(np.fft.fft2(noise.reshape(-1, size, size))) ** 2, axis=0)
r = radial_frequency(size, size); bins = np.round(r * size).astype(int)
radii = np.array([r[bins == b].mean() for b in range(1, size // 2)])
power = np.array([psd[bins == b].mean() for b in range(1, size // 2)])
print("fitted alpha:", np.polyfit(np.log(radii), np.log(power), 1)[0] / 2, "(true", alpha, ")")

# %% [markdown]
# ## 2. Selective omission on the digits
#
# With the two-band weights $\gamma_l 1_{[0, 0.2]} + \gamma_h 1_{[0.35, 1]}$ the band $(0.2, 0.35)$ gets no noise.
# The DKS whitens with the pseudo-inverse Cholesky of $\Sigma_t$, DDIM starts from $N(0, \Sigma_w)$: the samples must
# carry no energy at all in the omitted band, although every training digit does.

# %%
X = load_digits_images(n=300, rng=0).reshape(300, -1)
sagd = SpectralAnisotropic.two_band((1, 8, 8), 0.5, (0.0, 0.2), 0.8, (0.35, 1.0))
dks = DiffusionKernelSmoother(sagd).fit(X)
samples = sagd.sample_ddim(dks.score, 8, steps=30, rng=1)
cov = sagd.covariance
full = np.ones_like(cov.mask)
print("rank of Sigma_w:", cov.rank(), "of", cov.dim)
print("omitted-band energy fraction, data   :", (cov.band_energy(X) / cov.band_energy(X, full)).mean())
print("omitted-band energy fraction, samples:", (cov.band_energy(samples) / cov.band_energy(samples, full)).max())

# %% [markdown]
# ## 3. MA-fBM: weights and covariance against fractional Brownian motion
#
# Type II (GFDM, $Y_0 = 0$) approximates the Riemann-Liouville process; type I (stationary start, increments)
# approximates standard fBM with covariance $V_H \cdot \tfrac12(t^{2H} + s^{2H} - |t-s|^{2H})$. Errors are the
# maximum over a time grid.

# %%
hurst = 0.7
grid = np.linspace(0.05, 1, 8); T, S = np.meshgrid(grid, grid)
rl = np.vectorize(lambda t, s: quad(lambda u: ((t - u) * (s - u)) ** (hurst - 0.5), 0, min(t, s))[0]
                  / gamma_function(hurst + 0.5) ** 2)(T, S)
print(" K | omega (type II)                    | err II vs RL | err I vs fBM")
for K in (1, 2, 3, 4, 6):
    g2 = mafbm_speeds(K); w2 = mafbm_weights(g2, hurst)
    g1 = mafbm_speeds(K, 10.0 ** (K / 2) if K > 1 else 1.0); w1 = mafbm_weights(g1, hurst, kind="I")
    err2 = np.abs(mafbm_covariance(T, S, g2, w2) - rl).max()
    err1 = np.abs(mafbm_covariance(T, S, g1, w1, kind="I") / fbm_variance_constant(hurst) - fbm_covariance(T, S, hurst)).max()
    print(f"{K:2d} | {np.array2string(np.round(w2, 3)):34s} | {err2:.2e}     | {err1:.2e}")

# %% [markdown]
# ## 4. Fractional diffusion: transition, score structure, sampling
#
# The augmented transition is checked against Euler-Maruyama of the augmented SDE (one Brownian motion per
# coordinate), the $y$-part of the score is closed-form given the $x$-part, and the reverse SDE with the DKS score
# lands on the training points.

# %%
frac = FractionalDiffusion(0.9, 2, pd_eps=1e-4)
print(frac)
z0 = np.tile([0.8, -0.5, 0.2], (4000, 1))
zt = frac.euler_maruyama(z0, 0.3, 0.7, steps=200, rng=2)
Phi, Q = frac.transition(0.7, 0.3)
print("mean   MC", zt.mean(0).round(3), " exact", (Phi.block @ z0[0]).round(3))
print("var    MC", zt.var(0).round(3), " exact", np.diag(Q.block).round(3))
data = np.array([[-1.0], [0.2], [1.5]])
out = frac.reverse_sample(DiffusionKernelSmoother(frac).fit(data).score, 200, 1, steps=300, rng=3)
print("median distance to the nearest training point:", np.median(np.abs(out - data.T).min(1)))

# %% [markdown]
# ## 5. Stationary linear SDEs and their likelihood bounds
#
# The stationarity residual is zero to round-off; the prior mismatch $KL(q_T(\cdot|x) \| \pi)$ at an extreme
# logit pixel $x = 2.94$ shows that ALDA has not mixed by $T = 1$. With the exact score of Gaussian
# data, the ELBO must equal $-H(x) - KL(q_T \| \pi)$ up to $O(\varepsilon)$.

# %%
mean, var = np.array([0.5, -0.3]), 0.4
x = mean + np.sqrt(var) * rng.standard_normal((1000, 2))
print("process | residual | KL(q_T|pi) bits/dim at x=2.94 | E[ELBO] (5 s.e.)     | -H - KL")
for name in ("vp", "cld", "alda", "malda"):
    p = getattr(StationaryLinearSDE, name)()
    r = mean_elbo(p, x, gaussian_data_score(p, mean, var), rng=4, time_quadrature=12)
    print(f"{name:7s} | {p.stationarity_residual():.1e}  | {prior_kl(p, 2.94) / np.log(2):.4f}"
          f"                        | {r.estimate:.3f} +- {5 * r.standard_error:.3f} | {exact_score_elbo(p, mean, var):.3f}")

# %% [markdown]
# ## 6. Learning $(Q, D)$
#
# Maximising the exact-score ELBO of Gaussian data is minimising $KL(q_T \| \pi)$; with a fixed noise budget
# $\mathrm{tr}\,D$ the gradient through $\exp(\tau F_0)$ is exact (`scipy.linalg.expm_frechet`).

# %%
learned, history = learn_stationary_sde(2, mean, var, noise_budget=2.0, steps=60, rng=0)
kl = -history  # with the known score the ELBO is -H(x) - KL(q_T || pi)
print("KL: start", kl[0], " learned", kl[-1], " CLD (same budget)", prior_kl(StationaryLinearSDE.cld(), mean, var).sum())
print("Q =", learned.Q.round(3).tolist(), " D =", learned.D.round(3).tolist())
plt.semilogy(kl); plt.xlabel("Adam step"); plt.ylabel("KL(q_T || pi)"); plt.show()
