"""Layer 1: structured linear operators and exact transitions of time-rescaled linear SDEs.

Operators act on arrays of points ``(n, D)``. Their parameters may carry a leading batch axis of
length ``n`` (one operator per row, e.g. one time per sample); it broadcasts against the rows.
No operator ever materialises a ``D x D`` matrix except :meth:`LinearOperator.dense`, for tests.
"""
from .operators import LinearOperator, Scalar, Diagonal, Kron, as_operator
from .transitions import linear_sde_transition, van_loan_covariance

__all__ = ["LinearOperator", "Scalar", "Diagonal", "Kron", "as_operator", "linear_sde_transition",
           "van_loan_covariance"]
from .fourier import FourierDiagonal  # noqa: E402,F401

__all__ += ["FourierDiagonal"]
