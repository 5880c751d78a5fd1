"""Layer 5: torch-free neural score models (NumPy/CuPy, hand-written backward passes) and adapters."""
from .layers import Dense, SiLU, Tanh
from .mlp import MLP, fourier_time_features
from .optim import Adam
from .score_model import NeuralScoreModel, ScoreAdapter
from .unet import UNet

__all__ = ["Dense", "SiLU", "Tanh", "MLP", "fourier_time_features", "Adam", "NeuralScoreModel", "ScoreAdapter", "UNet"]
