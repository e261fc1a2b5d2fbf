"""tf_multinca: Growing NCA and the Multiple NCA of Adversarial Takeover, in TensorFlow 2 / Keras."""

from tf_multinca import layout
from tf_multinca.conventions import Convention, DISTILL, PAPER, get_convention
from tf_multinca.model import CAModel, WeightMismatchError, make_seed

__all__ = ['CAModel', 'Convention', 'DISTILL', 'PAPER', 'WeightMismatchError', 'get_convention',
           'layout', 'make_seed']
