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
# # 03 Operator-informed score matching (OISM)
#
# For a reversible diffusion with invariant law $\mu$ and generator $L = c(\Delta + \nabla\log\mu\cdot\nabla)$,
# take eigenfunctions $L\phi_a = \lambda_a\phi_a$ and the score model
# $s_t = \nabla\log\mu + \sum_a \alpha_a(t)\nabla\phi_a$. Its implicit score-matching loss is the quadratic
# $\alpha^\top A_t\alpha - 2\alpha^\top b_t + \text{const}$ with
#
# $$A_t[a,b] = \mathbb E_{\rho_t}\langle\nabla\phi_a, \nabla\phi_b\rangle = \sum_k G_{ab,k}\, e^{\mu_k t}\, \mathbb E_{\rho_0}[\psi_k],
# \qquad b_t[a] = -\tfrac{\lambda_a}{c}\, e^{\lambda_a t}\, \mathbb E_{\rho_0}[\phi_a],$$
#
# because $\langle\nabla\phi_a,\nabla\phi_b\rangle = \Gamma(\phi_a,\phi_b)/c$ expands over eigenfunctions $\psi_k$ and
# $P_t\psi_k = e^{\mu_k t}\psi_k$. Data enter only through sample means of eigenfunctions; every $t$ costs one small
# linear solve. This notebook
#
# 1. checks the product expansion behind $A_t$ (Hermite linearisation) against quadrature;
# 2. tabulates the Fisher divergence of OISM against the exact score of a Gaussian mixture for several $K$ and $t$;
# 3. checks that $\alpha(t)$ is a stationary point of the operator-form ISM loss, and that DSM $-$ ISM is model-free;
# 4. measures the variance reduction of operator control variates on a DSM estimate;
# 5. estimates a wrapped mixture on the torus (periodic Brownian motion) and its log-density by the probability-flow ODE.

# %%
import warnings
import numpy as np
import matplotlib.pyplot as plt

from opdiff.datasets import GaussianMixture, make_toy
from opdiff.estimators.oism import OISM, IllConditionedWarning
from opdiff.estimators.losses import operator_ism_loss, ism_loss, dsm_loss
from opdiff.estimators.control_variates import OperatorControlVariates
from opdiff.manifolds import FlatTorus
from opdiff.processes import OrnsteinUhlenbeck
from opdiff.processes.manifold import ManifoldBrownianMotion
from opdiff.spectral import Fourier, Hermite, hermite_functions, hermite_linearisation

warnings.simplefilter("ignore", IllConditionedWarning)
rng = np.random.default_rng(0)
ou = OrnsteinUhlenbeck(theta=1.0, T=8.0)
mixture = GaussianMixture([0.4, 0.6], [[-1.5], [1.0]], [0.16, 0.25])

# %% [markdown]
# ## 1. The product expansion
#
# Orthonormal Hermite functions $h_n = He_n/\sqrt{n!}$ multiply as
# $h_a h_b = \sum_j \frac{\sqrt{a!\,b!\,(a+b-2j)!}}{j!\,(a-j)!\,(b-j)!}\, h_{a+b-2j}$; `hermite_linearisation`
# evaluates the coefficients in log space. Gauss-Hermite quadrature of $\mathbb E[h_a h_b h_k]$ is an independent route.

# %%
K = 8
nodes, weights = np.polynomial.hermite_e.hermegauss(30)
weights = weights / weights.sum()
H = hermite_functions(nodes, 2 * K)
quadrature = np.einsum("q,qa,qb,qk->abk", weights, H[:, :K + 1], H[:, :K + 1], H)
print("max |table - quadrature| =", np.abs(hermite_linearisation(K) - quadrature).max())


# %% [markdown]
# ## 2. Fisher divergence against the exact score
#
# Exact expectations $\mathbb E_{\rho_0}[\psi_k]$ of the mixture (by quadrature) isolate the truncation error, which falls with $K$;
# sample means ($N = 2000$) add estimation error, which takes over once the basis is rich and $A_t$ ill conditioned.

# %%
def exact_moments(basis):
    z, w = np.polynomial.hermite_e.hermegauss(60)
    w = w / w.sum()
    return sum(wk * np.einsum("q,qgk->gk", w, basis.moment_values(m + np.sqrt(c[0, 0]) * z[:, None]))
               for wk, m, c in zip(mixture.weights, mixture.means, mixture.covs))

X = mixture.sample(2000, rng)
Ks, ts = [2, 4, 8, 12, 16], [0.05, 0.2, 0.5]
print("   t  " + "".join(f"   K={K:<3d} exact/sample  " for K in Ks))
for t in ts:
    xt = ou.sample(mixture.sample(5000, rng), t, rng)
    truth = mixture.score(xt, t, ou)
    cells = []
    for K in Ks:
        basis = Hermite(1, K)
        f_exact = np.mean((OISM(ou, basis, ridge=1e-10, n_grid=32).fit_moments(exact_moments(basis)).score(xt, t) - truth) ** 2)
        f_sample = np.mean((OISM(ou, basis, ridge=1e-10, n_grid=32).fit(X).score(xt, t) - truth) ** 2)
        cells.append(f"{f_exact:9.2e}/{f_sample:9.2e}")
    print(f"{t:5.2f} " + "  ".join(cells))

# %%
oism = OISM(ou, Hermite(1, 12), ridge=1e-10).fit(X)
grid = np.linspace(-3.5, 3.5, 300)[:, None]
fig, axes = plt.subplots(1, 3, figsize=(12, 3))
for ax, t in zip(axes, ts):
    ax.plot(grid, mixture.score(grid, t, ou), "k", lw=2, label="exact")
    ax.plot(grid, oism.score(grid, t), label="OISM, K=12")
    ax.set_title(f"t = {t}"); ax.set_ylim(-8, 8)
axes[0].legend(); plt.tight_layout()

# %% [markdown]
# ## 3. Stationarity and the model-free gap between DSM and ISM
#
# The operator form $\mathbb E_{\rho_0}[P_t(\ldots)]$ of the ISM loss is a sample mean over the data; its gradient at the OISM
# coefficients vanishes to solver precision. DSM and ISM evaluated on the same forward pairs differ by a constant that
# does not depend on the model.

# %%
t = 0.2
exact_oism = OISM(ou, Hermite(1, 8), ridge=0.0).fit(X)
alpha = exact_oism.coefficients(t, exact=True)
loss = operator_ism_loss(exact_oism.basis, alpha, X, t)
print("operator ISM", loss.value, " max |gradient| at alpha(t):", np.abs(loss.gradient).max())

x0 = mixture.sample(20000, rng)
gaps = []
for K in (3, 8):
    model = OISM(ou, Hermite(1, K)).fit(X)
    dsm, (xt, _) = dsm_loss(model.linear_model(), x0, t, ou, params=model.coefficients(t), rng=1, return_samples=True)
    ism = ism_loss(model, xt, t)
    mc = ism.value
    gaps.append(dsm.per_sample - ism.per_sample)
    print(f"K={K}: DSM {dsm.value:.4f}, ISM {mc:.4f} +- {ism.standard_error:.4f}, DSM-ISM {gaps[-1].mean():.4f}")
diff = gaps[0] - gaps[1]
print(f"difference of the two gaps: {diff.mean():.4f} +- {diff.std() / np.sqrt(len(diff)):.4f}")

# operator form (data only) against Monte Carlo ISM (forward samples), same model
op = operator_ism_loss(model.basis, model.coefficients(t), x0, t)
print(f"operator-form ISM {op.value:.4f} +- {op.standard_error:.4f}  vs  Monte Carlo ISM {mc:.4f} +- {ism.standard_error:.4f}")

# %% [markdown]
# ## 4. Operator control variates
#
# $Z_g = g(X_t) - e^{\lambda_g t} g(X_0)$ has mean zero for every eigenfunction $g$, and so has $f(X_0) Z_g$.
# With the optimal coefficient they remove most of the Monte Carlo variance of a DSM estimate on the 2-D toys.

# %%
cv = OperatorControlVariates(Hermite(2, 4), multiplier_basis=Hermite(2, 2))
Y = make_toy("two_spirals", 50000, rng=0) / 4.0
Z = cv.values(Y, ou.sample(Y, 0.3, rng), 0.3)
zscores = Z.mean(0) / (Z.std(0, ddof=1) / np.sqrt(len(Z)))
print(f"{Z.shape[1]} controls, largest |mean| / standard error = {np.abs(zscores).max():.2f}")
print(f"{'toy':16s}{'t':>6s}{'loss VR':>10s}{'grad VR':>10s}")
for name in ("two_spirals", "eight_gaussians", "pinwheel", "checkerboard"):
    Y = make_toy(name, 8000, rng=1); Y = Y / Y.std()
    model = OISM(ou, Hermite(2, 4), n_grid=16).fit(Y[:2000])
    for t in (0.05, 0.5):
        res = dsm_loss(model.linear_model(), Y, t, ou, params=model.coefficients(t), rng=2, control_variates=cv)
        print(f"{name:16s}{t:6.2f}{res.loss_variance_reduction:10.1f}{res.gradient_variance_reduction:10.2f}")

# %% [markdown]
# ## 5. The torus: periodic Brownian motion and the Fourier basis
#
# $dX = dW$ wrapped to $[-\pi, \pi)$ has $L = \tfrac12\Delta$, eigenfunctions $\sqrt2\cos kx, \sqrt2\sin kx$ with
# $\lambda = -k^2/2$. The exact score of a wrapped mixture comes from the circle heat kernel. The OISM log-density
# (probability-flow ODE and the instantaneous change of variables) integrates to one.

# %%
torus_bm = ManifoldBrownianMotion(FlatTorus(1), 1.0)
means, stds, wts = np.array([-2.2, 0.4, 2.7]), np.array([0.35, 0.5, 0.4]), np.array([0.45, 0.35, 0.2])
k = rng.choice(3, size=2000, p=wts)
Xc = np.mod(means[k] + stds[k] * rng.standard_normal(2000) + np.pi, 2 * np.pi)[:, None] - np.pi

def exact_wrapped(x, t):
    heat = 0.5 * (stds ** 2 + t)
    log_p, grad = FlatTorus(1).log_heat_kernel_and_gradient(x[:, None, :], means[None, :, None], heat[None, :])
    lj = np.log(wts) + log_p
    post = np.exp(lj - lj.max(1, keepdims=True)); post /= post.sum(1, keepdims=True)
    return np.log(np.exp(lj - lj.max(1, keepdims=True)).sum(1)) + lj.max(1), np.einsum("nk,nkd->nd", post, grad)

circle = OISM(torus_bm, Fourier(1, 16), n_grid=48).fit(Xc)
grid = np.linspace(-np.pi, np.pi, 400, endpoint=False)[:, None]
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
for t in (0.02, 0.1, 0.5):
    logp, score = exact_wrapped(grid, t)
    axes[0].plot(grid, score, "k", lw=1.5); axes[0].plot(grid, circle.score(grid, t), "--", label=f"t={t}")
    est = circle.log_density(grid, t, n_steps=32, progress=False)
    axes[1].plot(grid, np.exp(logp), "k", lw=1.5); axes[1].plot(grid, np.exp(est), "--")
    print(f"t={t}: mass of the OISM density {np.exp(est).mean() * 2 * np.pi:.4f}, "
          f"max |log-density error| {np.abs(est - logp).max():.3f}")
axes[0].legend(); axes[0].set_title("score (black: exact wrapped)"); axes[1].set_title("density")
plt.tight_layout()


# %% [markdown]
# Fisher divergence on the circle against the exact wrapped score (quadrature over the grid), exact Fourier moments
# ($\mathbb E[\sqrt2\cos kx] = \sqrt2\, e^{-k^2\sigma^2/2}\cos km$ per component) and sample means:

# %%
def exact_circle_moments(basis):
    q = basis.moment_frequencies[:, 0]
    out = np.zeros(basis.n_moments); out[0] = 1.0
    for w, m, sd in zip(wts, means, stds):
        out[1::2] += np.sqrt(2) * w * np.exp(-0.5 * (q * sd) ** 2) * np.cos(q * m)
        out[2::2] += np.sqrt(2) * w * np.exp(-0.5 * (q * sd) ** 2) * np.sin(q * m)
    return out[None]

print("   t  " + "".join(f"   K={K:<3d} exact/sample  " for K in (2, 4, 8, 16, 24)))
for t in (0.02, 0.1, 0.5):
    logp, truth = exact_wrapped(grid, t)
    cells = []
    for K in (2, 4, 8, 16, 24):
        b = Fourier(1, K)
        f = [np.mean((m.score(grid, t) - truth) ** 2 * np.exp(logp)[:, None]) * 2 * np.pi
             for m in (OISM(torus_bm, b, n_grid=32).fit_moments(exact_circle_moments(b)), OISM(torus_bm, b, n_grid=32).fit(Xc))]
        cells.append(f"{f[0]:9.2e}/{f[1]:9.2e}")
    print(f"{t:5.2f} " + "  ".join(cells))
