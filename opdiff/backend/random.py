"""Randomness only through ``numpy.random.Generator`` objects."""
import numbers

import numpy as np


def as_generator(rng=None):
    """Turn ``rng`` (None, an int seed, or a Generator) into a ``numpy.random.Generator``.

    Parameters
    ----------
    rng : None, int or numpy.random.Generator
        ``None`` for fresh entropy, a non-negative seed, or a Generator (returned as it is).

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    TypeError
        If ``rng`` is anything else (the legacy ``RandomState`` included).
    """
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng: a seed must be non-negative, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng: expected None, an int seed or numpy.random.Generator, got {type(rng).__name__}")
