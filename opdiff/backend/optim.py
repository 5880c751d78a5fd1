"""Adam (Kingma and Ba, arXiv 1412.6980): the one optimiser of the library, over a list of arrays.

Used by the (Q, D) learner of :mod:`opdiff.estimators`, the Frechet-distance classifier of
:mod:`opdiff.metrics` and (through a thin subclass) the networks of :mod:`opdiff.neural`.
"""
import numpy as np

from .namespace import get_namespace, to_numpy
from .validation import check_count, check_positive


class Adam:
    """Adam with bias correction, updating a list of arrays in place.

    Parameters
    ----------
    params : list of arrays
        The parameters (NumPy or CuPy, any shapes), updated in place by :meth:`step`.
    lr : float
        Step size.
    betas : (float, float)
        Decay rates of the first and second moments, each in ``[0, 1)``.
    eps : float
        Added to the root of the second moment.
    maximize : bool
        Ascend instead of descend (the gradients passed to :meth:`step` are of an objective to maximise).

    Attributes
    ----------
    step_count : int
        Number of updates applied.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False):
        self.params = list(params)
        self.lr = check_positive(lr, "lr")
        betas = tuple(float(b) for b in betas)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas: expected two numbers in [0, 1), got {betas}")
        self.betas, self.eps, self.maximize = betas, check_positive(eps, "eps"), bool(maximize)
        self.step_count = 0
        self._moments = [None] * len(self.params)

    def step(self, grads):
        """Apply one update.

        Parameters
        ----------
        grads : list of arrays
            One gradient per parameter, same shapes, in the order of ``params``.
        """
        grads = list(grads)
        if len(grads) != len(self.params):
            raise ValueError(f"grads: expected {len(self.params)} arrays (one per parameter), got {len(grads)}")
        for param, grad in zip(self.params, grads):
            if getattr(grad, "shape", None) != param.shape:
                raise ValueError(f"grads: expected shape {param.shape}, got {getattr(grad, 'shape', None)}")
        self.step_count += 1
        b1, b2 = self.betas
        correction1, correction2 = 1 - b1**self.step_count, 1 - b2**self.step_count
        sign = 1.0 if self.maximize else -1.0
        for k, (param, grad) in enumerate(zip(self.params, grads)):
            xp = get_namespace(param)
            m, v = self._moments[k] if self._moments[k] is not None else (xp.zeros_like(param), xp.zeros_like(param))
            m = b1 * m + (1 - b1) * grad
            v = b2 * v + (1 - b2) * grad * grad
            self._moments[k] = (m, v)
            param += sign * self.lr * (m / correction1) / (xp.sqrt(v / correction2) + self.eps)

    def state(self):
        """The optimiser's state: its step count and the moments, as host copies.

        Returns
        -------
        dict
            ``"step_count"`` (int), ``"first_moments"`` and ``"second_moments"`` (lists of NumPy arrays,
            one per parameter, of the parameters' shapes and dtypes; zeros before the first step).
            :meth:`load_state` of an Adam on parameters of the same shapes continues bit for bit.
        """
        first, second = [], []
        for param, pair in zip(self.params, self._moments):
            zeros = np.zeros(param.shape, dtype=param.dtype)
            first.append(zeros if pair is None else np.array(to_numpy(pair[0]), copy=True))
            second.append(zeros.copy() if pair is None else np.array(to_numpy(pair[1]), copy=True))
        return {"step_count": int(self.step_count), "first_moments": first, "second_moments": second}

    def load_state(self, state):
        """Restore a state from :meth:`state` (copied into the parameters' array namespace).

        Parameters
        ----------
        state : dict
            ``"step_count"`` (a non-negative integer), ``"first_moments"`` and ``"second_moments"``
            (one array per parameter, of its shape).

        Raises
        ------
        TypeError
            If ``state`` is not a dict.
        ValueError
            Naming ``state`` when a key is missing, or the number or shapes of the moments do not match
            the parameters; naming ``step_count`` when it is not a non-negative integer.
        """
        if not isinstance(state, dict):
            raise TypeError(f"state: expected a dict from Adam.state(), got {type(state).__name__}")
        missing = [key for key in ("step_count", "first_moments", "second_moments") if key not in state]
        if missing:
            raise ValueError(f"state: expected the keys of Adam.state(), missing {missing}")
        step_count = check_count(state["step_count"], "step_count", minimum=0)
        first, second = list(state["first_moments"]), list(state["second_moments"])
        if not len(first) == len(second) == len(self.params):
            raise ValueError(f"state: expected {len(self.params)} first and second moments (one per parameter), "
                             f"got {len(first)} and {len(second)}")
        moments = []
        for k, (param, m, v) in enumerate(zip(self.params, first, second)):
            xp = get_namespace(param)
            m, v = xp.array(xp.asarray(m), copy=True), xp.array(xp.asarray(v), copy=True)
            if m.shape != param.shape or v.shape != param.shape:
                raise ValueError(f"state: moments {k} have shapes {m.shape} and {v.shape}, "
                                 f"the parameter's is {param.shape}")
            moments.append((m, v))
        self._moments, self.step_count = moments, step_count
