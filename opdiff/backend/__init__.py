"""Layer 0: array-namespace dispatch, dtype policy, random generators, validation and chunking."""
from .namespace import get_namespace, to_numpy, is_cupy_array
from .dtypes import result_dtype, as_float_array, DEFAULT_DTYPE
from .random import as_generator
from .chunking import get_chunk_bytes, set_chunk_bytes, chunk_rows, chunk_budget
from .params import ParamsMixin, NotFittedError
from .validation import (
    check_points,
    check_finite,
    check_time,
    check_fitted,
    check_positive,
    check_count,
    check_choice,
    require_extra,
)

__all__ = [
    "get_namespace", "to_numpy", "is_cupy_array", "result_dtype", "as_float_array", "DEFAULT_DTYPE",
    "as_generator", "get_chunk_bytes", "set_chunk_bytes", "chunk_rows", "chunk_budget",
    "check_points", "check_finite", "check_time", "check_fitted", "check_positive", "check_count", "check_choice",
    "require_extra", "ParamsMixin", "NotFittedError",
]
