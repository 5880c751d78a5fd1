"""Layer 5: torch-free neural score models (NumPy/CuPy, hand-written backward passes) and adapters.

Training (:class:`NeuralScoreModel`, scikit-learn protocol: ``__init__`` stores, ``fit(X, y=None,
sample_weight=None)`` returns self, learned state in ``*_`` attributes)::

    from opdiff.neural import NeuralScoreModel
    model = NeuralScoreModel(process, hidden=(128, 128), n_steps=2000, batch_size=256, lr=2e-3, rng=0)
    model.fit(X)                      # X (n, d) points, or (n, C, H, W) images (architecture="unet")
    model.score(x, t)                 # (m, D) score (EMA weights); model.denoise(x, t) (scalar Gaussian)
    model.losses_                     # (n_steps,) training loss per step
    model.validation_losses_          # held-out DSM loss every `validation_every` steps (validation_fraction > 0)
    model.dsm_loss(X_test, rng=0)     # held-out DSM loss of the fitted model
    model.score_vjp(x, t, v)          # (d score / dx)^T v;  model.divergence(x, t[, probes])

- every forward process: Gaussian (VP, VE, OU, BM; CLD / MALDA auxiliary variables) in noise-prediction
  form; ``ManifoldBrownianMotion`` on ``FlatTorus(d)`` (inputs ``(cos, sin)``, wrapped / theta-series
  heat-kernel DSM target) and ``Hypersphere(n)`` (ambient inputs, outputs projected to the tangent space,
  exact heat-kernel DSM target); see :mod:`opdiff.neural.forms`.
- residual mode ("OISM (L) + NN", arXiv 2406.09084): ``NeuralScoreModel(process, base=fitted_oism)``,
  score ``= base + network``, DSM on the residual target; or
  ``opdiff.estimators.ResidualScore(fitted_oism, NeuralScoreModel(...)).fit(X)``.
- warm start ("NN (pre-trained)"): ``NeuralScoreModel(process, pretrain=fitted_oism, pretrain_steps=1000,
  n_steps=20000)``: the first 1000 of the 20000 steps regress onto the given score, then DSM.
- training loop: ``ema_decay`` (0.999, with warm-up), ``checkpoint="run.npz"``, ``checkpoint_every=k``,
  ``resume=True`` (bit-identical weights after resuming; a longer ``n_steps`` on the same checkpoint
  continues training), ``validation_fraction`` / ``validation_every``, ``sample_weight`` in ``fit``,
  ``progress=False``, float32 data train in float32, same ``rng`` same weights; ``time_sampling``
  (log-uniform times by default on manifolds), ``time_groups`` (distinct times per batch: 8 on ``S^n``),
  ``blas_threads=1`` (one BLAS thread: the fastest for these small GEMMs, and safe on a busy machine).
- architectures: ``"mlp"`` (:class:`MLP`), ``"unet"`` (:class:`UNet`, images), any network object, or an
  outside network through :class:`NetworkAdapter` (``apply(params, x, c)`` + ``vjp``).

Likelihood: ``opdiff.sampling.log_likelihood(model, x, t_min=1e-3, n_steps=64, divergence="auto")``
(probability-flow ODE, exact divergence up to 16 dimensions, Hutchinson above with a standard error;
R^d, torus, sphere; any model with ``score`` and ``divergence`` or ``score_vjp``, e.g. a fitted OISM)
returns ``.log_likelihood (n,)``, ``.standard_error``; ``model.bits_per_dim(images, data_range=(-1, 1))``.

Outside networks for evaluation: :class:`ScoreAdapter` (score / noise / denoiser callables, optional VJP).
"""
from .layers import Dense, SiLU, Tanh
from .mlp import MLP, fourier_time_features
from .optim import Adam
from .adapters import NetworkAdapter, ScoreAdapter
from .score_model import NeuralScoreModel
from .training import TrainingLoop, ema_decay_at
from .unet import UNet

__all__ = ["Dense", "SiLU", "Tanh", "MLP", "fourier_time_features", "Adam", "NeuralScoreModel", "ScoreAdapter",
           "NetworkAdapter", "TrainingLoop", "ema_decay_at", "UNet"]
