"""Fixtures of the reduction tests."""
import pytest


@pytest.fixture
def cupy_gpu():
    """The cupy module, or a skip where CuPy or a CUDA GPU is missing (the gpu-marked tests)."""
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA GPU")
    except cupy.cuda.runtime.CUDARuntimeError:
        pytest.skip("no CUDA GPU")
    return cupy
