"""How a score network meets a forward process: inputs, conditioning, output scaling and DSM targets.

A network ``e = f(u, c)`` sees input features ``u`` of the state ``z`` and a conditioning scalar ``c``
of the time, and predicts a *standardised* quantity ``e`` from which the score follows by a fixed map:

- Gaussian processes (``z = Phi lift(x0) + L eps``, ``L L^T = Sigma``): ``e`` predicts ``eps``, the
  score is ``-L^{-T} e`` and the DSM target is the drawn ``eps`` itself. Scalar processes see
  ``u = z / (a sqrt(1 + s^2))`` (unit-variance data stay unit variance) and ``c = log s(t)``;
  auxiliary-variable processes (CLD, ...) see ``u = z`` and ``c = log t``.
- Brownian motion on a manifold at heat time ``s(t)``: the score is ``P_z(-e / sqrt(2 s))`` (``P_z``
  the tangent projection; the identity on the torus) and the DSM target is ``-sqrt(2 s)`` times the
  Riemannian gradient of the log heat kernel (:meth:`ManifoldBrownianMotion.transition_score`:
  wrapped Gaussian / theta series on the torus, the exact series on the sphere), so that ``e`` is
  ``O(1)`` at every time, as ``eps`` is. Inputs respect the manifold: ``(cos z, sin z)`` on ``T^d``
  (periodic), the unit vector ``z`` on ``S^n``; ``c = log s(t)``.

In both cases ``to_noise`` (score to ``e``) is linear, so a target score ``s*`` for the whole model
(DSM, a score to pre-train toward, or ``s* - s_base`` in residual mode) becomes the network target
``to_noise(s*)``.
"""
import numpy as np

from ..backend import check_points, get_namespace
from ..manifolds import FlatTorus, Hypersphere


def process_form(process):
    """The :class:`GaussianForm` or :class:`ManifoldForm` of ``process``.

    Parameters
    ----------
    process : GaussianProcess or ManifoldBrownianMotion

    Returns
    -------
    GaussianForm or ManifoldForm

    Raises
    ------
    TypeError
        For an object that is neither a Gaussian process (``transition``, ``state_dim``) nor a manifold
        Brownian motion (``is_manifold``, ``heat_time``, ``transition_score``).
    """
    if getattr(process, "is_manifold", False) and callable(getattr(process, "heat_time", None)):
        return ManifoldForm(process)
    if callable(getattr(process, "transition", None)) and callable(getattr(process, "state_dim", None)):
        return GaussianForm(process)
    raise TypeError(f"process: expected a Gaussian process (VPSDE, OrnsteinUhlenbeck, StationaryLinearSDE, ...) "
                    f"or a ManifoldBrownianMotion, got {type(process).__name__}")


class GaussianForm:
    """Noise-prediction form of a Gaussian process (scalar or with auxiliary variables).

    Parameters
    ----------
    process : GaussianProcess
    """

    is_manifold = False

    def __init__(self, process):
        self.process = process
        self.is_scalar = hasattr(process, "noise_level") and process.n_blocks == 1

    def state_dim(self, data_dim):
        """State dimension ``D`` for data of dimension ``data_dim``.

        Parameters
        ----------
        data_dim : int

        Returns
        -------
        int
        """
        return self.process.state_dim(data_dim)

    def feature_dim(self, state_dim):
        """Number of network inputs per state (``D``).

        Parameters
        ----------
        state_dim : int

        Returns
        -------
        int
        """
        return state_dim

    def check_states(self, z, dim, name="x"):
        """Validated float states ``(m, D)``.

        Parameters
        ----------
        z : (m, D) array
        dim : int
        name : str

        Returns
        -------
        (m, D) array
        """
        return check_points(z, name, dim=dim, allow_1d=True)

    def conditioning(self, t):
        """``log s(t)`` (scalar processes) or ``log t``; ``t (m,)`` -> ``(m,)`` float64.

        Parameters
        ----------
        t : (m,) array

        Returns
        -------
        (m,) array
        """
        return np.log(self.process.noise_level(t)) if self.is_scalar else np.log(t)

    def _input_scale(self, t):
        if self.is_scalar:
            a, s = self.process.scale(t), self.process.noise_level(t)
            # 1 / (a sqrt(1 + s^2)) = 1 / |(a, a s)|: a s is the transition's standard deviation, so nothing
            # overflows at long horizons where s itself is ~1e200 (OU T=400, VP T=10)
            return 1.0 / np.hypot(a, a * s)
        return np.ones_like(t)

    def features(self, z, t):
        """Network inputs ``u (m, D)`` of states ``z (m, D)`` at times ``t (m,)``.

        Parameters
        ----------
        z : (m, D) array
        t : (m,) array

        Returns
        -------
        (m, D) array
        """
        xp = get_namespace(z)
        return z * xp.asarray(self._input_scale(t), dtype=z.dtype)[:, None]

    def features_vjp(self, grad_u, z, t):
        """``(du/dz)^T grad_u``; ``(m, D)``.

        Parameters
        ----------
        grad_u : (m, D) array
        z : (m, D) array
        t : (m,) array

        Returns
        -------
        (m, D) array
        """
        return self.features(grad_u, t)  # u is linear in z

    def _cholesky(self, t):
        return self.process.transition(t)[1].cholesky()

    def from_noise(self, e, z, t):
        """Score ``-L^{-T} e`` of the network output ``e (m, D)``.

        Parameters
        ----------
        e, z : (m, D) arrays
        t : (m,) array

        Returns
        -------
        (m, D) array
        """
        return -self._cholesky(t).transpose().solve(e)

    def from_noise_vjp(self, v, z, t):
        """Transpose of :meth:`from_noise` applied to ``v``: ``-L^{-1} v``; ``(m, D)``.

        Parameters
        ----------
        v, z : (m, D) arrays
        t : (m,) array

        Returns
        -------
        (m, D) array
        """
        return -self._cholesky(t).solve(v)

    def to_noise(self, score, z, t):
        """The network output ``-L^T s`` whose score is ``s``; ``(m, D)``.

        Parameters
        ----------
        score, z : (m, D) arrays
        t : (m,) array

        Returns
        -------
        (m, D) array
        """
        return -self._cholesky(t).transpose().apply(score)

    def tangent(self, z, v):
        """Identity (every vector is tangent on ``R^D``).

        Parameters
        ----------
        z, v : (m, D) arrays

        Returns
        -------
        (m, D) array
        """
        return v

    def dsm_draw(self, x0, t, rng):
        """States ``z ~ p_t(. | x0)`` and the DSM network target ``eps``.

        Parameters
        ----------
        x0 : (m, d) array
        t : (m,) array
        rng : numpy.random.Generator

        Returns
        -------
        z, target : (m, D) arrays
        """
        return self.process.sample(x0, t, rng=rng, return_noise=True)


class ManifoldForm:
    """Standardised-score form of Brownian motion on the torus, the sphere or ``R^d``.

    Parameters
    ----------
    process : ManifoldBrownianMotion
    """

    is_manifold = True

    def __init__(self, process):
        self.process, self.manifold = process, process.manifold
        self.periodic = isinstance(self.manifold, FlatTorus)
        self.spherical = isinstance(self.manifold, Hypersphere)

    def state_dim(self, data_dim):
        """Ambient dimension ``D`` (``data_dim`` must equal it).

        Parameters
        ----------
        data_dim : int

        Returns
        -------
        int
        """
        if int(data_dim) != self.manifold.ambient_dim:
            raise ValueError(f"X: expected points with {self.manifold.ambient_dim} coordinates on "
                             f"{self.manifold!r}, got {data_dim}")
        return int(data_dim)

    def feature_dim(self, state_dim):
        """``2 d`` on the torus (``cos``, ``sin``), ``D`` otherwise.

        Parameters
        ----------
        state_dim : int

        Returns
        -------
        int
        """
        return 2 * state_dim if self.periodic else state_dim

    def check_states(self, z, dim, name="x"):
        """Points validated on (and snapped onto) the manifold; ``(m, D)``.

        Parameters
        ----------
        z : (m, D) array
        dim : int
        name : str

        Returns
        -------
        (m, D) array
        """
        return self.manifold.check_points(z, name)

    def heat_time(self, t):
        """``s(t)`` as float64 ``(m,)``.

        Parameters
        ----------
        t : (m,) array

        Returns
        -------
        (m,) array
        """
        return np.asarray(self.process.heat_time(t), dtype=np.float64)

    def conditioning(self, t):
        """``log s(t)``; ``(m,)``.

        Parameters
        ----------
        t : (m,) array

        Returns
        -------
        (m,) array
        """
        return np.log(self.heat_time(t))

    def _scale(self, t, dtype):
        return np.sqrt(2.0 * self.heat_time(t)).astype(dtype)[:, None]

    def features(self, z, t):
        """``(cos z, sin z)`` ``(m, 2 d)`` on the torus; ``z`` itself elsewhere.

        Parameters
        ----------
        z : (m, D) array
        t : (m,) array

        Returns
        -------
        (m, 2 d) or (m, D) array
        """
        if not self.periodic:
            return z
        xp = get_namespace(z)
        return xp.concatenate([xp.cos(z), xp.sin(z)], axis=1)

    def features_vjp(self, grad_u, z, t):
        """``(du/dz)^T grad_u``: ``-sin z g_cos + cos z g_sin`` on the torus; ``(m, D)``.

        Parameters
        ----------
        grad_u : (m, 2 d) or (m, D) array
        z : (m, D) array
        t : (m,) array

        Returns
        -------
        (m, D) array
        """
        if not self.periodic:
            return grad_u
        xp = get_namespace(z)
        d = z.shape[1]
        return -xp.sin(z) * grad_u[:, :d] + xp.cos(z) * grad_u[:, d:]

    def tangent(self, z, v):
        """Tangent projection of ambient vectors ``v`` at ``z``; ``(m, D)``.

        Parameters
        ----------
        z, v : (m, D) arrays

        Returns
        -------
        (m, D) array
        """
        return self.manifold.to_tangent(z, v)

    def from_noise(self, e, z, t):
        """Score ``P_z(-e / sqrt(2 s))``; ``(m, D)``.

        Parameters
        ----------
        e, z : (m, D) arrays
        t : (m,) array

        Returns
        -------
        (m, D) array
        """
        return self.tangent(z, -e / self._scale(t, e.dtype))

    def from_noise_vjp(self, v, z, t):
        """Transpose of ``e -> -e / sqrt(2 s)`` applied to ``v`` (the projection is applied separately).

        Parameters
        ----------
        v, z : (m, D) arrays
        t : (m,) array

        Returns
        -------
        (m, D) array
        """
        return -v / self._scale(t, v.dtype)

    def tangent_vjp(self, w, z, u):
        """The projection's own term in ``(d P_z w / dz)^T u`` for tangent ``u``: ``-(z . w) u`` on ``S^n``.

        ``P_z w = w - (z . w) z`` has Jacobian ``P Dw - z w^T - z z^T Dw - (z . w) I``; against a tangent
        ``u`` (``z . u = 0``) its transpose gives ``Dw^T u - (z . w) u``. Zero on flat manifolds.

        Parameters
        ----------
        w, z, u : (m, D) arrays

        Returns
        -------
        (m, D) array or 0.0
        """
        if not self.spherical:
            return 0.0
        xp = get_namespace(z)
        return -xp.sum(z * w, axis=1, keepdims=True) * u

    def to_noise(self, score, z, t):
        """``-sqrt(2 s) P_z score``: the network output whose score is ``score``; ``(m, D)``.

        Parameters
        ----------
        score, z : (m, D) arrays
        t : (m,) array

        Returns
        -------
        (m, D) array
        """
        return -self._scale(t, score.dtype) * self.tangent(z, score)

    def dsm_draw(self, x0, t, rng):
        """Exact heat-kernel draws ``z`` from ``x0`` and the target ``to_noise(grad log p_t(z | x0))``.

        Parameters
        ----------
        x0 : (m, D) array
        t : (m,) array
        rng : numpy.random.Generator

        Returns
        -------
        z, target : (m, D) arrays
        """
        z = self.process.sample(x0, t, rng=rng)
        return z, self.to_noise(self.process.transition_score(z, x0, t), z, t)
