"""Adam on a model's parameter arrays: a thin subclass of the library's one Adam, :class:`opdiff.backend.optim.Adam`."""
from ..backend.optim import Adam as _ArrayAdam


class Adam(_ArrayAdam):
    """Adam with bias correction on ``model.parameters()``, from the gradients in ``model.gradients()``.

    Parameters
    ----------
    model : object with ``parameters()`` and ``gradients()`` (lists of ``(layer, name, array)``)
    lr : float
    betas : (float, float)
    eps : float
    """

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.model = model
        super().__init__([param for _, _, param in model.parameters()], lr=lr, betas=betas, eps=eps)

    def step(self):
        """Apply one update from the gradients currently stored in the model."""
        self.params = [param for _, _, param in self.model.parameters()]  # after model.to(xp) too
        super().step([grad for _, _, grad in self.model.gradients()])

    def load_state(self, state):
        """Restore a state from :meth:`state` onto the model's current parameter arrays.

        Parameters
        ----------
        state : dict
            As returned by :meth:`state`.
        """
        self.params = [param for _, _, param in self.model.parameters()]  # their namespace after model.to(xp)
        super().load_state(state)
