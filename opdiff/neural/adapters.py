"""Outside networks in opdiff: a score callable for evaluation, or a trainable network for the training loop.

- :class:`ScoreAdapter`: ``function(x, t)`` returning a score, a noise prediction or a denoiser becomes
  an object with ``score`` / ``denoise`` (and, given its vector-Jacobian product, ``score_vjp`` for the
  probability-flow likelihood).
- :class:`NetworkAdapter`: ``apply(params, x, c)`` plus its vector-Jacobian product
  ``vjp(params, x, c, cotangent) -> (parameter gradients, input gradient)`` becomes a network that
  :class:`~opdiff.neural.NeuralScoreModel` trains with its own Adam, EMA and checkpoints (the arrays in
  ``params`` are updated in place). A JAX model gives both through ``jax.vjp``, a PyTorch model through
  ``torch.func.vjp`` or ``torch.autograd.grad``; opdiff never imports either.
"""
import numpy as np

from ..backend import check_choice, check_points, get_namespace


def _check_output(out, shape, name):
    if getattr(out, "shape", None) != tuple(shape):
        raise ValueError(f"{name}: expected an output of shape {tuple(shape)}, got {getattr(out, 'shape', None)}")
    xp = get_namespace(out)
    if not bool(xp.all(xp.isfinite(out))):
        raise ValueError(f"{name}: returned non-finite values")
    return out


class ScoreAdapter:
    """Wrap any outside network so that it speaks opdiff's score / denoiser protocol.

    Parameters
    ----------
    function : callable
        ``function(x (m, D), t (m,)) -> (m, D)``, e.g. a PyTorch or JAX model wrapped to NumPy.
    process : GaussianProcess
    output : {"score", "noise", "denoiser"}
        What ``function`` returns: the score, the standardised noise ``eps`` (so that
        ``x = Phi x0 + L eps``), or the posterior mean ``E[x_0 | x]`` (scalar processes).
    vjp : callable, optional
        ``vjp(x (m, D), t (m,), v (m, D)) -> (m, D)``: the transpose of the Jacobian of ``function``
        in ``x`` applied to ``v``. Enables :meth:`score_vjp` (probability-flow likelihoods).
    """

    def __init__(self, function, process, output="score", vjp=None):
        if not callable(function):
            raise TypeError(f"function: expected a callable, got {type(function).__name__}")
        if vjp is not None and not callable(vjp):
            raise TypeError(f"vjp: expected None or a callable vjp(x, t, v), got {type(vjp).__name__}")
        self.function, self.process, self.vjp = function, process, vjp
        self.output = check_choice(output, "output", {"score", "noise", "denoiser"})

    def _inputs(self, x, t):
        x = check_points(x, "x", allow_1d=True)
        t = np.broadcast_to(self.process.check_time(t, n=x.shape[0]), (x.shape[0],)).astype(np.float64)
        return x, t

    def _call(self, x, t):
        x, t = self._inputs(x, t)
        out = self.function(x, t)
        if self.output == "denoiser":
            xp = get_namespace(out)
            if not bool(xp.all(xp.isfinite(xp.asarray(out)))):
                raise ValueError("function: returned non-finite values")
            return x, t, out
        return x, t, _check_output(out, x.shape, "function")

    def score(self, x, t):
        """Score ``(m, D)`` from whatever the wrapped function returns.

        Parameters
        ----------
        x : (m, D) array
        t : float or (m,) array

        Returns
        -------
        (m, D) array
        """
        x, t, out = self._call(x, t)
        if self.output == "score":
            return out
        Phi, Sigma = self.process.transition(t)
        if self.output == "noise":
            return -Sigma.cholesky().transpose().solve(out)
        return -Sigma.solve(x - Phi.apply(self.process.lift(out)))

    def score_vjp(self, x, t, v):
        """``(d score / d x)^T v`` from the wrapped function's ``vjp``; ``(m, D)``.

        Parameters
        ----------
        x : (m, D) array
        t : float or (m,) array
        v : (m, D) array

        Returns
        -------
        (m, D) array
        """
        if self.vjp is None:
            raise TypeError("vjp: score_vjp needs the vector-Jacobian product of the wrapped function "
                            "(ScoreAdapter(..., vjp=...))")
        x, t = self._inputs(x, t)
        v = check_points(v, "v", dim=x.shape[1])
        Phi, Sigma = self.process.transition(t)
        if self.output == "score":
            return _check_output(self.vjp(x, t, v), x.shape, "vjp")
        if self.output == "noise":  # score = -L^{-T} f  =>  J^T v = -J_f^T L^{-1} v
            return _check_output(self.vjp(x, t, -Sigma.cholesky().solve(v)), x.shape, "vjp")
        # score = -Sigma^{-1} (x - Phi lift(f))  =>  J^T v = -Sigma^{-1} v + J_f^T lift^T Phi^T Sigma^{-1} v
        w = Sigma.solve(v)
        pulled = self.process.project(Phi.transpose().apply(w))
        return -w + _check_output(self.vjp(x, t, pulled), pulled.shape, "vjp")

    def denoise(self, x, t):
        """Posterior mean ``(m, d)`` from whatever the wrapped function returns (scalar processes).

        Parameters
        ----------
        x : (m, D) array
        t : float or (m,) array

        Returns
        -------
        (m, d) array
        """
        x, t, out = self._call(x, t)
        if self.output == "denoiser":
            return out
        Phi, Sigma = self.process.transition(t)
        if self.process.n_blocks != 1:
            raise NotImplementedError("denoise: Tweedie inversion needs a scalar process")
        return Phi.solve(x + Sigma.apply(self.score(x, t)))

    def __call__(self, x, t):
        return self.score(x, t)


class NetworkAdapter:
    """An outside network with its vector-Jacobian product, trainable by :class:`~opdiff.neural.NeuralScoreModel`.

    Parameters
    ----------
    apply : callable
        ``apply(params, x, c) -> out``: ``params`` the list of parameter arrays, ``x`` the network input
        (``(m, F)`` features or ``(m, C, H, W)`` images), ``c (m,)`` the conditioning scalar (log noise
        level or log heat time); ``out`` of shape ``(m, D)`` (or the image shape).
    vjp : callable
        ``vjp(params, x, c, cotangent) -> (parameter_gradients, input_gradient)``: the transposed
        Jacobians of ``apply`` in ``params`` (a list like ``params``) and in ``x``, applied to
        ``cotangent`` (shape of ``out``).
    params : list of arrays
        Initial parameters (copied to float arrays; the copies are updated in place by the optimiser).

    Examples
    --------
    A JAX model ``f(params, x, c)`` (params flattened to a list)::

        def vjp(params, x, c, cotangent):
            _, pullback = jax.vjp(lambda p, y: f(p, y, c), params, x)
            grads, grad_x = pullback(cotangent)
            return [np.asarray(g) for g in grads], np.asarray(grad_x)
    """

    def __init__(self, apply, vjp, params):
        for name, function in (("apply", apply), ("vjp", vjp)):
            if not callable(function):
                raise TypeError(f"{name}: expected a callable, got {type(function).__name__}")
        params = list(params)
        if not params:
            raise ValueError("params: expected a non-empty list of parameter arrays")
        copies = []
        for k, param in enumerate(params):
            array = np.array(param, copy=True)
            if not np.issubdtype(array.dtype, np.floating):
                raise TypeError(f"params: entry {k} has dtype {array.dtype}, expected floating-point arrays")
            copies.append(array)
        self.apply, self.vjp, self.params = apply, vjp, copies
        self.grads = [np.zeros_like(p) for p in copies]
        self._inputs = None

    def parameters(self):
        """List of ``(index, "param", array)`` (the optimiser's view).

        Returns
        -------
        list of tuple
        """
        return [(k, "param", p) for k, p in enumerate(self.params)]

    def gradients(self):
        """List of ``(index, "param", gradient)``, in the order of :meth:`parameters`.

        Returns
        -------
        list of tuple
        """
        return [(k, "param", g) for k, g in enumerate(self.grads)]

    def forward(self, x, conditioning):
        """``apply(params, x, conditioning)``, checked for shape and finiteness.

        Parameters
        ----------
        x : array
            Network input.
        conditioning : (m,) array

        Returns
        -------
        array
        """
        self._inputs = (x, conditioning)
        out = self.apply(self.params, x, conditioning)
        xp = get_namespace(out)
        out = xp.asarray(out)
        if out.shape[0] != x.shape[0]:
            raise ValueError(f"apply: expected {x.shape[0]} output rows, got shape {tuple(out.shape)}")
        return _check_output(out, out.shape, "apply")

    def backward(self, grad_out):
        """Parameter gradients (stored) and the input gradient, from ``vjp``.

        Parameters
        ----------
        grad_out : array of the output's shape

        Returns
        -------
        array of the input's shape
        """
        if self._inputs is None:
            raise ValueError("backward: call forward first")
        x, conditioning = self._inputs
        grads, grad_x = self.vjp(self.params, x, conditioning, grad_out)
        grads = list(grads)
        if len(grads) != len(self.params):
            raise ValueError(f"vjp: expected {len(self.params)} parameter gradients, got {len(grads)}")
        for k, (grad, param) in enumerate(zip(grads, self.params)):
            grad = np.asarray(grad, dtype=param.dtype)
            if grad.shape != param.shape:
                raise ValueError(f"vjp: gradient {k} has shape {grad.shape}, expected {param.shape}")
            self.grads[k] = grad
        return _check_output(np.asarray(grad_x, dtype=x.dtype), x.shape, "vjp")
