"""Layer 5: data sets: 2-D toys, Gaussian mixtures with exact forward marginals, manifold and image data."""
from .mixtures import GaussianMixture, random_mixture
from .toys import TOYS, checkerboard, eight_gaussians, make_toy, moons, pinwheel, rings, two_spirals

__all__ = ["GaussianMixture", "random_mixture", "TOYS", "make_toy", "two_spirals", "eight_gaussians",
           "pinwheel", "checkerboard", "moons", "rings"]
# Manifold and image data sets register below (one import line each).
from .images import load_digits_images, load_natural_patches  # noqa: E402,F401
from .manifold import (VonMisesFisherMixture, WrappedNormalMixture, latlon_to_unit, load_latlon,  # noqa: E402,F401
                       unit_to_latlon)
from .image_files import load_cifar10, load_mnist, read_idx  # noqa: E402,F401

__all__ += ["load_digits_images", "load_natural_patches", "VonMisesFisherMixture", "WrappedNormalMixture",
            "latlon_to_unit", "load_latlon", "unit_to_latlon", "load_cifar10", "load_mnist", "read_idx"]
