"""Processes shared by the operator tests."""
import pytest

from opdiff.processes import VESDE, VPSDE, BrownianMotion, OrnsteinUhlenbeck
from opdiff.processes.linear import StationaryLinearSDE

PROCESSES = {
    "bm": lambda: BrownianMotion(sigma=1.3),
    "ou": lambda: OrnsteinUhlenbeck(theta=0.7),
    "ve": lambda: VESDE(sigma_min=0.1, sigma_max=5.0),
    "ve_edm": lambda: VESDE.edm(sigma_max=10.0),
    "vp_linear": lambda: VPSDE(),
    "vp_cosine": lambda: VPSDE(schedule="cosine"),
    "cld": lambda: StationaryLinearSDE.cld(),
}


@pytest.fixture(params=sorted(PROCESSES))
def process(request):
    return PROCESSES[request.param]()


@pytest.fixture
def process_table():
    """Constructors of the shared processes by name."""
    return PROCESSES
