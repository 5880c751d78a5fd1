"""Train an outside network with opdiff's training loop, then sample with it and compute its likelihood.

opdiff never imports a deep-learning framework. An outside network enters through
:class:`opdiff.neural.NetworkAdapter`, which needs two functions:

- ``apply(params, x, c) -> out``: the network, with ``params`` a list of arrays, ``x (m, F)`` its input
  features and ``c (m,)`` the conditioning scalar (log noise level), ``out (m, D)``;
- ``vjp(params, x, c, cotangent) -> (parameter_gradients, input_gradient)``: the transposed Jacobians
  of ``apply`` applied to ``cotangent`` (what reverse-mode autodiff gives).

:class:`~opdiff.neural.NeuralScoreModel` then trains it by denoising score matching with its own Adam,
weight average (EMA) and checkpoints, and the trained model plugs into the samplers and the
probability-flow likelihood like any other score.

Here the "outside network" is a two-layer tanh MLP written in plain NumPy with its VJP by hand, so the
script runs anywhere (``python docs/examples/outside_network.py``, a few seconds). The comments show
the same two functions for JAX and PyTorch.
"""
import numpy as np

from opdiff.datasets import GaussianMixture
from opdiff.neural import NetworkAdapter, NeuralScoreModel
from opdiff.processes import VPSDE
from opdiff.sampling import VEDenoiser, log_likelihood, sample_heun

WIDTH = 64


def features(x, c):
    """Input of the network: the point and four sinusoids of the conditioning scalar."""
    return np.concatenate([x, np.sin(c[:, None] * [0.5, 1.0]), np.cos(c[:, None] * [0.5, 1.0])], axis=1)


def apply(params, x, c):
    W1, b1, W2, b2 = params
    hidden = np.tanh(features(x, c) @ W1 + b1)
    return hidden @ W2 + b2


def vjp(params, x, c, cotangent):
    W1, b1, W2, b2 = params
    inputs = features(x, c)
    hidden = np.tanh(inputs @ W1 + b1)
    grad_hidden = (cotangent @ W2.T) * (1.0 - hidden**2)
    grads = [inputs.T @ grad_hidden, grad_hidden.sum(0), hidden.T @ cotangent, cotangent.sum(0)]
    grad_x = (grad_hidden @ W1.T)[:, : x.shape[1]]  # only the point's columns of the input
    return grads, grad_x


# With JAX (params a list of jax arrays; opdiff hands NumPy arrays in and expects NumPy arrays back):
#
#     import jax, jax.numpy as jnp
#     def apply(params, x, c):
#         return np.asarray(jax_model(params, jnp.asarray(x), jnp.asarray(c)))
#     def vjp(params, x, c, cotangent):
#         _, pullback = jax.vjp(lambda p, y: jax_model(p, y, jnp.asarray(c)), params, jnp.asarray(x))
#         grads, grad_x = pullback(jnp.asarray(cotangent))
#         return [np.asarray(g) for g in grads], np.asarray(grad_x)
#
# With PyTorch (module parameters exported as NumPy arrays and loaded back on every call with
# torch.func.functional_call, so that opdiff's optimiser owns the values):
#
#     import torch
#     names = [name for name, _ in module.named_parameters()]
#     def call(params, x, c):
#         tensors = {n: torch.from_numpy(p) for n, p in zip(names, params)}
#         return torch.func.functional_call(module, tensors, (x, c))
#     def apply(params, x, c):
#         with torch.no_grad():
#             return call(params, torch.from_numpy(x), torch.from_numpy(c)).numpy()
#     def vjp(params, x, c, cotangent):
#         tensors = [torch.from_numpy(p).requires_grad_() for p in params]
#         xt = torch.from_numpy(x).requires_grad_()
#         out = call([t for t in tensors], xt, torch.from_numpy(c))   # functional_call takes the dict
#         grads = torch.autograd.grad(out, tensors + [xt], torch.from_numpy(cotangent))
#         return [g.numpy() for g in grads[:-1]], grads[-1].numpy()
#     params = [p.detach().numpy().copy() for p in module.parameters()]


def main(n_steps=1500, n_test=300, seed=0):
    """Train, sample and score; returns ``(held-out log-likelihood, untrained one, sample mean distance)``."""
    rng = np.random.default_rng(seed)
    data_law = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], 0.15)
    X = data_law.sample(4000, rng)
    params = [rng.normal(size=(6, WIDTH)) / np.sqrt(6), np.zeros(WIDTH),
              0.01 * rng.normal(size=(WIDTH, 2)), np.zeros(2)]
    network = NetworkAdapter(apply, vjp, params)
    process = VPSDE()

    model = NeuralScoreModel(process, architecture=network, n_steps=n_steps, batch_size=256, lr=3e-3, rng=seed,
                             validation_fraction=0.1, validation_every=max(1, n_steps // 5))
    model.fit(X)  # DSM with opdiff's Adam, EMA, held-out loss; checkpoint="run.npz" would make it resumable
    print("held-out DSM loss every", model.validation_every, "steps:", np.round(model.validation_losses_, 3))

    # sampling: the trained score through the VE-form denoiser and Heun's method (EDM)
    ve = VEDenoiser(process, model.score)
    times = np.geomspace(1.0, 1e-3, 33)
    start = process.prior().sample(1000, 2, rng=seed + 1)
    samples = ve.sample(sample_heun, start, times, append_zero=True).x
    print("sample means of the two halves:", samples[samples[:, 0] < 0].mean(0), samples[samples[:, 0] > 0].mean(0))

    # likelihood: the probability-flow ODE with the exact divergence from the network's VJP
    test = data_law.sample(n_test, seed + 2)
    trained = log_likelihood(model, test, n_steps=32).log_likelihood.mean()
    untrained_model = NeuralScoreModel(process, architecture=network, n_steps=1, lr=1e-12, rng=seed).fit(X)
    untrained = log_likelihood(untrained_model, test, n_steps=32).log_likelihood.mean()
    exact = data_law.log_density(test).mean()
    print(f"held-out log-likelihood: trained {trained:.3f}, untrained {untrained:.3f}, true law {exact:.3f}")
    centres = np.array([samples[samples[:, 0] < 0].mean(0), samples[samples[:, 0] > 0].mean(0)])
    return trained, untrained, float(np.max(np.abs(centres - data_law.means)))


if __name__ == "__main__":
    main()
