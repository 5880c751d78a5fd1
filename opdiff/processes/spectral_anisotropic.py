"""Spectrally anisotropic Gaussian diffusion (SAGD): a scalar schedule with Fourier-diagonal noise.

Formulas of SAGD (arXiv 2510.09660), five:

1. forward SDE: ``dx = f(t) x dt + g(t) Sigma_w^{1/2} dW`` for any scalar schedule (VP by default:
   ``f = -beta/2``, ``g = sqrt(beta)``);
2. transition: ``x_t | x_s ~ N(a_t/a_s x_s, a_t^2 (s_t^2 - s_s^2) Sigma_w)`` with the schedule's
   scale ``a`` and noise level ``s`` (VP: ``N(sqrt(abar) x_0, (1 - abar) Sigma_w)``);
3. conditional score (Eq. 23) ``-Sigma_w^+ (x_t - a_t x_0) / sigma_t^2`` with the pseudo-inverse
   (rank-deficient case): no score, and no content, in an omitted band;
4. Tweedie / eps form: with ``x~ = x / a = x_0 + s eps``, ``x0_hat = x~ + s^2 Sigma_w grad_{x~} log p``,
   ``eps_hat = (x~ - x0_hat) / s``;
5. DDIM in that VE form: ``x~' = x0_hat + sqrt(s'^2 - sig^2) eps_hat + sig Sigma_w^{1/2} xi``,
   ``sig = eta s' sqrt(1 - s'^2/s^2)`` (``eta = 0`` deterministic, ``eta = 1`` ancestral DDPM with shaped
   noise), started from the prior ``N(0, a_T^2 s_T^2 Sigma_w)`` (essential for selective omission).

Images ``(n, C, H, W)`` are flattened to ``(n, C*H*W)`` (C-order) for the process methods; the
covariance ``Sigma_w`` is a :class:`opdiff.linalg.FourierDiagonal`.
"""
import numpy as np

from ..backend import as_generator, check_count, check_points, check_positive
from ..linalg import FourierDiagonal
from ..linalg.fourier import band_pass_weights, power_law_weights, two_band_weights
from .base import GaussianPrior, GaussianProcess
from .scalar import ScalarGaussianProcess, VPSDE


class SpectralAnisotropic(GaussianProcess):
    """SAGD: ``dx = f(t) x dt + g(t) Sigma_w^{1/2} dW`` on flattened images.

    Parameters
    ----------
    shape : tuple (C, H, W)
        Image shape.
    weights : (H, W) or (C, H, W) array, or FourierDiagonal
        Amplitudes ``w(f)`` on the ``fft2`` grid (covariance eigenvalues ``|w|^2``), or the covariance
        operator itself.
    schedule : ScalarGaussianProcess, optional
        The scalar schedule (default ``VPSDE(beta_min=0.1, beta_max=20)``).
    normalize : {"trace", None}
        ``"trace"``: scale ``|w|^2`` to ``tr(Sigma_w) / (H W) = 1`` (deterministic; see
        :mod:`opdiff.linalg.fourier`). Ignored when ``weights`` is an operator.
    """

    def __init__(self, shape, weights, schedule=None, normalize="trace"):
        shape = tuple(int(s) for s in np.atleast_1d(shape))
        if len(shape) != 3:
            raise ValueError(f"shape: expected (C, H, W), got {shape}")
        if isinstance(weights, FourierDiagonal):
            if weights.shape != shape or weights.batched:
                raise ValueError(f"weights: expected an unbatched FourierDiagonal of shape {shape}, got {weights}")
            self.covariance = FourierDiagonal(shape, weights.eigenvalues * weights.scale)
        else:
            self.covariance = FourierDiagonal.from_weights(shape, weights, normalize=normalize)
        schedule = VPSDE(beta_min=0.1, beta_max=20.0) if schedule is None else schedule
        if not isinstance(schedule, ScalarGaussianProcess):
            raise TypeError(f"schedule: expected a ScalarGaussianProcess (e.g. VPSDE()), got {type(schedule).__name__}")
        self.schedule = schedule
        self.shape = shape
        self.t_min, self.t_max = schedule.t_min, schedule.t_max

    @classmethod
    def power_law(cls, shape, alpha, eps_dc=1e-10, **kwargs):
        """plw-SAGD: ``w = (r + eps_dc)^alpha``."""
        return cls(shape, power_law_weights(shape[-2], shape[-1], alpha, eps_dc), **kwargs)

    @classmethod
    def band_pass(cls, shape, low, high, **kwargs):
        """Band-pass SAGD: ``w = 1{low <= r <= high}`` (everything else omitted)."""
        return cls(shape, band_pass_weights(shape[-2], shape[-1], low, high), **kwargs)

    @classmethod
    def two_band(cls, shape, gamma_low, band_low, gamma_high, band_high, **kwargs):
        """bpm-SAGD: ``gamma_l eps_[a_l, b_l] + gamma_h eps_[a_h, b_h]``; ``b_l < a_h`` omits ``(b_l, a_h)``."""
        return cls(shape, two_band_weights(shape[-2], shape[-1], gamma_low, band_low, gamma_high, band_high),
                   **kwargs)

    @property
    def dim(self):
        """Number of pixels ``C H W``."""
        return int(np.prod(self.shape))

    @property
    def data_dim(self):
        """Data are flattened images of ``dim`` pixels."""
        return self.dim

    def check_data(self, x0, name="x0"):
        """Validate images ``(n, C, H, W)`` (flattened here) or flat ``(n, C*H*W)`` rows.

        Parameters
        ----------
        x0 : (n, C, H, W) or (n, C*H*W) array
        name : str
            Argument name for error messages.

        Returns
        -------
        (n, C*H*W) array
        """
        arr = np.asarray(x0) if not hasattr(x0, "shape") else x0
        if getattr(arr, "ndim", 0) == 4:
            if tuple(arr.shape[1:]) != self.shape:
                raise ValueError(f"{name}: expected images of shape (n, {', '.join(map(str, self.shape))}), "
                                 f"got shape {tuple(arr.shape)}")
            arr = arr.reshape(arr.shape[0], -1)
        return check_points(arr, name, dim=self.dim)

    def flatten(self, images):
        """``(n, C, H, W)`` (or already flat ``(n, C*H*W)``) to ``(n, C*H*W)``."""
        arr = np.asarray(images)
        if arr.ndim == 4 and arr.shape[1:] == self.shape:
            return arr.reshape(arr.shape[0], -1)
        return check_points(arr, "images", dim=self.dim)

    def unflatten(self, x):
        """``(n, C*H*W)`` to ``(n, C, H, W)``."""
        return np.asarray(x).reshape((-1,) + self.shape)

    # ------------------------------------------------------------------ contract
    def transition(self, t, s=0.0):
        """``Phi = Scalar(a_t / a_s)``, ``Sigma = FourierDiagonal(lam, a_t^2 (s_t^2 - s_s^2))``."""
        Phi, variance = self.schedule.transition(t, s)
        return Phi, FourierDiagonal(self.shape, self.covariance.eigenvalues, variance.c)

    def drift_operator(self, t):
        return self.schedule.drift_operator(t)

    def transition_kernel(self, t=None, bandwidth_factors=None, data_space=False):
        """The Fourier-whitened Gaussian kernel (:class:`~opdiff.processes.kernels.FourierGaussianKernel`).

        Parameters are those of :meth:`GaussianProcess.transition_kernel`.

        Returns
        -------
        FourierGaussianKernel
        """
        from .kernels import FourierGaussianKernel

        t = None if t is None else self.check_time(t)
        return FourierGaussianKernel(self, t, bandwidth_factors, data_space)

    def diffusion(self, t):
        """``g(t) Sigma_w^{1/2}`` as a FourierDiagonal."""
        g = self.schedule.diffusion(t).c
        return FourierDiagonal(self.shape, np.sqrt(self.covariance.eigenvalues), g)

    def diffusion_covariance(self, t):
        g = self.schedule.diffusion(t).c
        return FourierDiagonal(self.shape, self.covariance.eigenvalues, g**2)

    def prior(self, dim=None):
        """``N(0, v Sigma_w)`` with the schedule's terminal variance ``v`` (1 for VP), on images of ``self.dim`` pixels.

        Parameters
        ----------
        dim : int, optional
            If given, it must be ``self.dim`` (the prior is bound to the image size).

        Returns
        -------
        GaussianPrior
        """
        if dim is not None and check_count(dim, "dim") != self.dim:
            raise ValueError(f"dim: expected the image size {self.dim} = prod{self.shape}, got {dim}")
        variance = float(np.asarray(self.schedule.prior().covariance(1).c))
        return GaussianPrior(lambda d: FourierDiagonal(self.shape, self.covariance.eigenvalues, variance), dim=self.dim)

    # ------------------------------------------------------------------ eps form and sampling
    def denoise_from_score(self, x, t, score):
        """``(x0_hat, eps_hat)`` from a score value (formula 4); ``x``, ``score`` ``(n, D)``."""
        a = float(self.schedule.scale(t))
        s = float(self.schedule.noise_level(t))
        x_tilde = x / a
        x0_hat = x_tilde + s**2 * a * self.covariance.apply(score)
        return x0_hat, (x_tilde - x0_hat) / s

    def sample_ddim(self, score, n, steps=50, eta=0.0, t_end=1e-3, rng=None, progress=False):
        """DDIM from the prior on ``linspace(T, t_end, steps)``: :func:`opdiff.sampling.sample_ddim`'s final samples.

        Parameters
        ----------
        score : callable
            ``score(x (n, D), t float) -> (n, D)``: a score of the forward marginals (e.g.
            ``DiffusionKernelSmoother(process).fit(X).score``); non-finite values are rejected.
        n : int
            Number of samples.
        steps : int
            Number of score evaluations; the output is the denoised ``x0_hat`` at ``t_end``.
        eta : float
            Stochasticity in ``[0, 1]`` (noise coloured by ``Sigma_w^{1/2}``).
        t_end : float
            Last time, in ``(0, T)``.
        rng : None, int or Generator
        progress : bool
            Show a tqdm progress bar (off by default).

        Returns
        -------
        (n, C*H*W) array
        """
        from ..sampling import sample_ddim  # the sampler lives in opdiff.sampling (layer 4); imported on use

        rng = as_generator(rng)
        steps = check_count(steps, "steps")
        t_end = check_positive(t_end, "t_end")
        if t_end >= self.t_max:
            raise ValueError(f"t_end: expected a time below T={self.t_max}, got {t_end}")
        x = self.prior().sample(check_count(n, "n"), self.dim, rng=rng)
        return sample_ddim(score, x, np.linspace(self.t_max, t_end, steps), process=self, eta=eta, rng=rng,
                           progress=progress).x

    def __repr__(self):
        return f"SpectralAnisotropic(shape={self.shape}, covariance={self.covariance}, schedule={self.schedule!r})"
