"""``FourierDiagonal``: stationary (circulant) covariances of images, diagonal in the 2-D Fourier basis.

``Sigma_w = F^{-1} diag(lam) F`` per channel (``I_C (x) Sigma_w``), ``F`` the unitary 2-D DFT, acting on
flattened images ``(n, C*H*W)`` through real FFTs. Formulas of SAGD (arXiv 2510.09660)
(four):

1. ``Sigma_w = T_w T_w^*`` with ``T_w = F^{-1} diag(w) F``, eigenvalues ``lam = |w|^2``;
2. realness: a real operator needs ``lam(k) = lam(-k)``; a user array is symmetrised,
   ``lam_s(k) = (lam(k) + lam(-k)) / 2``;
3. weight families on the ``np.fft.fftfreq`` grid, ``r = sqrt(f_x^2 + f_y^2)`` in cycles per pixel:
   power law ``w = (r + eps_dc)^alpha``, band pass ``w = 1{a <= r <= b}``, two-band mixture
   ``lam = g_l^2 1_[a_l, b_l] + g_h^2 1_[a_h, b_h]``;
4. deterministic trace normalisation ``tr(Sigma_w) / (H W) = mean(lam) = 1`` (a choice the paper leaves open),
   instead of the paper's random per-sample std normalisation.

Zero eigenvalues (an omitted band) get pseudo-inverse semantics: :meth:`FourierDiagonal.solve` is the
Moore-Penrose pseudo-inverse, :meth:`FourierDiagonal.logdet` the log pseudo-determinant over the
non-omitted bins, :meth:`FourierDiagonal.cholesky` the symmetric square root in Fourier space. A
kernel smoother that whitens with these never puts content into an omitted band.
"""
import numpy as np

from ..backend import get_namespace
from .operators import LinearOperator, Scalar


def radial_frequency(height, width):
    """``r(f) = sqrt(f_x^2 + f_y^2)`` on the ``fftfreq`` grid (cycles per pixel); returns ``(H, W)``."""
    fy = np.fft.fftfreq(int(height))[:, None]
    fx = np.fft.fftfreq(int(width))[None, :]
    return np.sqrt(fx**2 + fy**2)


def power_law_weights(height, width, alpha, eps_dc=1e-10):
    """Amplitudes ``w = (r + eps_dc)^alpha`` (plw-SAGD); ``(H, W)``."""
    if not np.isfinite(alpha):
        raise ValueError(f"alpha: expected a finite exponent, got {alpha}")
    if not eps_dc > 0:
        raise ValueError(f"eps_dc: expected a positive DC floor, got {eps_dc}")
    return (radial_frequency(height, width) + eps_dc) ** float(alpha)


def band_pass_weights(height, width, low, high):
    """Amplitudes ``w = 1{low <= r <= high}`` (both inclusive); ``(H, W)``."""
    if not (0.0 <= low <= high):
        raise ValueError(f"low, high: expected 0 <= low <= high, got low={low}, high={high}")
    r = radial_frequency(height, width)
    return ((r >= low) & (r <= high)).astype(np.float64)


def two_band_weights(height, width, gamma_low, band_low, gamma_high, band_high):
    """Amplitudes of the two-band mixture ``g_l eps_[a_l, b_l] + g_h eps_[a_h, b_h]`` (independent draws).

    ``w = sqrt(g_l^2 1_low + g_h^2 1_high)``. Choosing ``b_l < a_h`` omits the band ``(b_l, a_h)``
    (selective omission). Returns ``(H, W)``.
    """
    for name, gamma in (("gamma_low", gamma_low), ("gamma_high", gamma_high)):
        if not (np.isfinite(gamma) and gamma >= 0):
            raise ValueError(f"{name}: expected a non-negative weight, got {gamma}")
    low = band_pass_weights(height, width, *band_low)
    high = band_pass_weights(height, width, *band_high)
    return np.sqrt(gamma_low**2 * low + gamma_high**2 * high)


def symmetrise_spectrum(eigenvalues):
    """``(lam(k) + lam(-k)) / 2`` over the last two axes: the spectrum of the real operator."""
    flipped = np.roll(np.flip(eigenvalues, axis=(-2, -1)), shift=(1, 1), axis=(-2, -1))
    return 0.5 * (eigenvalues + flipped)


class FourierDiagonal(LinearOperator):
    """``c I_C (x) F^{-1} diag(lam) F`` on flattened images ``(n, C*H*W)``.

    Parameters
    ----------
    shape : tuple (C, H, W)
        Image shape.
    eigenvalues : (H, W) or (C, H, W) array
        Non-negative eigenvalues ``lam`` on the full ``fft2`` grid (symmetrised, see module notes).
        Shared by the channels when ``(H, W)``.
    scale : float or (n,) array
        Non-negative factor ``c`` (one per row when an array: e.g. ``sigma_t^2`` at times ``t``).

    Notes
    -----
    ``solve`` is the pseudo-inverse, ``logdet`` the log pseudo-determinant (over bins with
    ``c lam > 0``), ``cholesky`` the symmetric square root; the operator is symmetric
    (``transpose`` returns itself).
    """

    def __init__(self, shape, eigenvalues, scale=1.0):
        shape = tuple(int(s) for s in np.atleast_1d(shape))
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"shape: expected (C, H, W) with positive sizes, got {shape}")
        C, H, W = shape
        lam = np.asarray(eigenvalues, dtype=np.float64)
        if lam.shape not in ((H, W), (C, H, W)):
            raise ValueError(f"eigenvalues: expected shape {(H, W)} or {(C, H, W)}, got {lam.shape}")
        if not np.all(np.isfinite(lam)) or np.any(lam < 0):
            raise ValueError("eigenvalues: expected finite non-negative values")
        scale = np.asarray(scale, dtype=np.float64)
        if scale.ndim > 1 or not np.all(np.isfinite(scale)) or np.any(scale < 0):
            raise ValueError(f"scale: expected a non-negative float or (n,) array, got {scale}")
        self.shape = shape
        self.eigenvalues = symmetrise_spectrum(lam)
        self.scale = scale
        self.batched = scale.ndim == 1
        self.batch_size = scale.shape[0] if self.batched else None
        self._half = self.eigenvalues[..., : W // 2 + 1]

    @classmethod
    def from_weights(cls, shape, weights, normalize="trace", scale=1.0):
        """Operator with eigenvalues ``|w|^2``; ``normalize="trace"`` rescales to ``mean(lam) = 1``.

        ``normalize=None`` keeps ``|w|^2`` as given.
        """
        lam = np.abs(np.asarray(weights, dtype=np.float64)) ** 2
        if normalize not in ("trace", None):
            raise ValueError(f"normalize: expected 'trace' or None, got {normalize!r}")
        if normalize == "trace":
            mean = float(np.mean(symmetrise_spectrum(lam)))
            if not mean > 0:
                raise ValueError("weights: all zero, cannot normalise the trace")
            lam = lam / mean
        return cls(shape, lam, scale)

    @property
    def dim(self):
        return int(np.prod(self.shape))

    @property
    def mask(self):
        """Boolean ``(H, W)`` or ``(C, H, W)`` array of the retained (non-omitted) bins."""
        return self.eigenvalues > 0

    def _row(self, i):
        return FourierDiagonal(self.shape, self.eigenvalues, self.scale[i])

    def _check(self, x):
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x: expected shape (n, {self.dim}) for images {self.shape}, got {tuple(x.shape)}")
        if self.batched and x.shape[0] != self.batch_size:
            raise ValueError(f"x: expected {self.batch_size} rows for this batched operator, got {x.shape[0]}")

    def _multiply(self, x, half, coefficient):
        """``irfft2(rfft2(x) * coefficient * half)`` row by row."""
        self._check(x)
        xp = get_namespace(x)
        C, H, W = self.shape
        images = x.reshape(x.shape[0], C, H, W)
        factor = xp.asarray(half)
        coefficient = xp.asarray(coefficient)
        if coefficient.ndim == 1:
            factor = coefficient[:, None, None, None] * factor
        else:
            factor = coefficient * factor
        spectrum = xp.fft.rfft2(images, axes=(-2, -1)) * factor.astype(x.dtype, copy=False)
        out = xp.fft.irfft2(spectrum, s=(H, W), axes=(-2, -1))
        return out.reshape(x.shape).astype(x.dtype, copy=False)

    def apply(self, x):
        """``Sigma x``; ``x (n, C*H*W)``."""
        return self._multiply(x, self._half, self.scale)

    def power(self, exponent):
        """``Sigma^exponent`` as a FourierDiagonal (pseudo-inverse powers for negative exponents)."""
        exponent = float(exponent)
        return FourierDiagonal(self.shape, _pseudo_power(self.eigenvalues, exponent),
                               _pseudo_power(self.scale, exponent))

    def solve(self, x):
        """Pseudo-inverse ``Sigma^+ x`` (omitted bins mapped to zero)."""
        return self._multiply(x, _pseudo_power(self._half, -1.0), _pseudo_power(self.scale, -1.0))

    def inverse(self):
        """The pseudo-inverse operator."""
        return self.power(-1.0)

    def transpose(self):
        """The operator itself (symmetric).

        Returns
        -------
        FourierDiagonal
        """
        return self

    def cholesky(self):
        """Symmetric square root ``F^{-1} diag(sqrt(c lam)) F`` (``L L^T = Sigma``)."""
        return self.power(0.5)

    def projector(self):
        """Orthogonal projector onto ``range(Sigma)`` (the retained band)."""
        return FourierDiagonal(self.shape, self.mask.astype(np.float64))

    def rank(self):
        """Number of non-zero eigenvalues on ``R^{C H W}`` (for a positive scale)."""
        C = self.shape[0] if self.eigenvalues.ndim == 2 else 1
        return int(np.count_nonzero(self.eigenvalues)) * C

    def logdet(self, dim):
        """Log pseudo-determinant ``sum_{lam > 0} log(c lam)``; ``()`` or ``(n,)`` if batched."""
        if int(dim) != self.dim:
            raise ValueError(f"dim: this FourierDiagonal acts on R^{self.dim}, got dim={dim}")
        C = self.shape[0] if self.eigenvalues.ndim == 2 else 1
        positive = self.eigenvalues[self.eigenvalues > 0]
        if np.any(self.scale <= 0):
            raise ValueError("scale: the log pseudo-determinant needs a positive scale")
        return C * np.sum(np.log(positive)) + self.rank() * np.log(self.scale)

    def band_energy(self, x, mask=None):
        """Energy ``sum |F x|^2`` per row inside ``mask`` (default: the omitted bins); ``(n,)``."""
        self._check(x)
        C, H, W = self.shape
        mask = ~self.mask if mask is None else np.asarray(mask, dtype=bool)
        spectrum = np.fft.fft2(np.asarray(x).reshape(x.shape[0], C, H, W), axes=(-2, -1))
        mask = np.broadcast_to(mask, (C, H, W))
        return np.sum(np.abs(spectrum) ** 2 * mask, axis=(1, 2, 3)) / (H * W)

    def __matmul__(self, other):
        if isinstance(other, FourierDiagonal) and other.shape == self.shape:
            return FourierDiagonal(self.shape, self.eigenvalues * other.eigenvalues, self.scale * other.scale)
        if isinstance(other, Scalar):
            return FourierDiagonal(self.shape, self.eigenvalues, self.scale * np.asarray(other.c, dtype=np.float64))
        return super().__matmul__(other)

    def __rmatmul__(self, other):
        """``Scalar @ FourierDiagonal`` (reached when the left operand returns ``NotImplemented``)."""
        if isinstance(other, Scalar):
            return self @ other
        return NotImplemented

    def __repr__(self):
        return f"FourierDiagonal(shape={self.shape}, rank={self.rank()}/{self.dim}, batched={self.batched})"


def _pseudo_power(values, exponent):
    """``values ** exponent`` with zeros kept at zero for negative exponents."""
    values = np.asarray(values, dtype=np.float64)
    if exponent >= 0:
        return values**exponent
    out = np.zeros_like(values)
    positive = values > 0
    out[positive] = values[positive] ** exponent
    return out
