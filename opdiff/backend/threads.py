"""BLAS thread control (threadpoolctl): pin BLAS to one thread where threads only add overhead or
oversubscribe the cores (BLAS called from every Numba thread, batches of tiny dense solves)."""
import contextlib
import threading

_CONTROLLER = []


def _blas_controller():
    """A cached ``threadpoolctl.ThreadpoolController``, or None without threadpoolctl."""
    if not _CONTROLLER:
        try:
            import scipy.linalg.cython_blas  # noqa: F401  (the BLAS Numba's np.dot calls; load it before scanning)
            from threadpoolctl import ThreadpoolController
        except ImportError:  # threadpoolctl ships with scikit-learn; without it BLAS keeps its threads
            _CONTROLLER.append(None)
        else:
            _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def blas_threads():
    """Threads BLAS may use now (1 when threadpoolctl is missing: unknown, the tiled kernel is safe)."""
    controller = _blas_controller()
    if controller is None:
        return 1
    return max([info["num_threads"] for info in controller.select(user_api="blas").info()] or [1])


_PIN = {"lock": threading.Lock(), "depth": 0, "limiter": None}


@contextlib.contextmanager
def single_threaded_blas():
    """Context pinning BLAS to one thread (for code that calls BLAS from many threads, or on tiny matrices).

    Calls from several Python threads share one pin: the first entry sets it, the last exit restores the
    previous BLAS threads (so overlapping calls cannot leave BLAS single-threaded).
    """
    controller = _blas_controller()
    if controller is None:
        yield
        return
    with _PIN["lock"]:
        if _PIN["depth"] == 0:
            _PIN["limiter"] = controller.limit(limits=1, user_api="blas")
        _PIN["depth"] += 1
    try:
        yield
    finally:
        with _PIN["lock"]:
            _PIN["depth"] -= 1
            if _PIN["depth"] == 0:
                _PIN["limiter"].restore_original_limits()
                _PIN["limiter"] = None
