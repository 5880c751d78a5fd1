"""The chunk budget: the largest query x data block (in bytes) any reduction may hold at once."""
import contextlib
import os

_CHUNK_BYTES = int(os.environ.get("OPDIFF_CHUNK_BYTES", 32 * 2**20))


def get_chunk_bytes():
    """Current chunk budget in bytes (default 32 MiB, env ``OPDIFF_CHUNK_BYTES``).

    Returns
    -------
    int
    """
    return _CHUNK_BYTES


def set_chunk_bytes(n_bytes):
    """Set the chunk budget in bytes; returns the previous value.

    Parameters
    ----------
    n_bytes : int
        The new budget, at least 1024 bytes.

    Returns
    -------
    int
        The previous budget.
    """
    global _CHUNK_BYTES
    n_bytes = int(n_bytes)
    if n_bytes < 1024:
        raise ValueError(f"n_bytes: the chunk budget must be at least 1024 bytes, got {n_bytes}")
    previous, _CHUNK_BYTES = _CHUNK_BYTES, n_bytes
    return previous


@contextlib.contextmanager
def chunk_budget(n_bytes):
    """Context manager that sets the chunk budget temporarily.

    Parameters
    ----------
    n_bytes : int
        The budget inside the ``with`` block (at least 1024); the previous one is restored after it.

    Yields
    ------
    None
    """
    previous = set_chunk_bytes(n_bytes)
    try:
        yield
    finally:
        set_chunk_bytes(previous)


def chunk_rows(n_rows, row_bytes, chunk_bytes=None):
    """Yield ``slice`` objects over ``n_rows`` rows so that each block holds at most the budget.

    Parameters
    ----------
    n_rows : int
        Number of rows (queries) to split.
    row_bytes : int
        Bytes one row of the block needs (e.g. ``n_data * itemsize * k`` for k temporaries).
    chunk_bytes : int, optional
        Budget; defaults to :func:`get_chunk_bytes`.

    Yields
    ------
    slice
        Consecutive row ranges covering ``range(n_rows)``, at least one row each (none when ``n_rows`` is 0).

    Raises
    ------
    ValueError
        If ``n_rows`` or ``row_bytes`` is not a non-negative integer, or ``chunk_bytes`` is not positive.
    """
    from .validation import check_count

    n_rows = check_count(n_rows, "n_rows", minimum=0)
    row_bytes = check_count(row_bytes, "row_bytes", minimum=0)
    budget = get_chunk_bytes() if chunk_bytes is None else check_count(chunk_bytes, "chunk_bytes")
    rows = max(1, int(budget // max(row_bytes, 1)))
    for start in range(0, n_rows, rows):
        yield slice(start, min(start + rows, n_rows))
