"""Adam (Kingma and Ba), in place on a model's parameter arrays."""
from ..backend import check_positive, get_namespace


class Adam:
    """Adam with bias correction.

    Parameters
    ----------
    model : object with ``parameters()`` and ``gradients()`` (lists of ``(layer, name, array)``)
    lr : float
    betas : (float, float)
    eps : float
    """

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.model = model
        self.lr = check_positive(lr, "lr")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas: expected two numbers in [0, 1), got {betas}")
        self.betas, self.eps, self.step_count = betas, check_positive(eps, "eps"), 0
        self._moments = {}

    def step(self):
        """Apply one update from the gradients currently stored in the model."""
        self.step_count += 1
        b1, b2 = self.betas
        correction1, correction2 = 1 - b1**self.step_count, 1 - b2**self.step_count
        for (i, name, param), (_, _, grad) in zip(self.model.parameters(), self.model.gradients()):
            xp = get_namespace(param)
            m, v = self._moments.get((i, name), (xp.zeros_like(param), xp.zeros_like(param)))
            m = b1 * m + (1 - b1) * grad
            v = b2 * v + (1 - b2) * grad * grad
            self._moments[(i, name)] = (m, v)
            param -= self.lr * (m / correction1) / (xp.sqrt(v / correction2) + self.eps)
