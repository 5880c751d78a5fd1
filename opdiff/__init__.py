"""opdiff: diffusion models as Markov semigroups.

A forward noising process is a Markov semigroup ``P_t`` with generator ``L``. Forward marginals of a
data set are kernel mean embeddings, their exact scores are diffusion kernel smoothers, and
samplers integrate the reverse dynamics with any score. The layer map is the architecture page of the documentation (``docs/architecture.md``).
"""
__version__ = "0.1.0"
