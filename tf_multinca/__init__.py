"""tf_multinca: Growing NCA and the Multiple NCA of Adversarial Takeover, in TensorFlow 2 / Keras.

    import tf_multinca
    pair = tf_multinca.load_pairing('lizard_red')     # or 'results/lizard_red', ours
    result = tf_multinca.run_takeover(pair.original, pair.adversary, pair.injection,
                                      pair.target_array)

The public API: the models (`CAModel`, `MultiNCA`, `FixedMaskNCA`), the hub (`load`,
`load_pairing`), rollouts (`grow`, `inject`, `run_takeover`), `train` and `export_model`, and
`Error`, the base class of every error of ours. The modules below hold the rest.
"""

# Before anything imports TensorFlow: our binaries start without its C++ log lines.
from tf_multinca import quiet as _quiet
if _quiet.apply():
  _quiet.import_tensorflow()

from tf_multinca import layout  # pylint: disable=g-import-not-at-top,wrong-import-position
from tf_multinca.conventions import Convention, DISTILL, PAPER, get_convention
from tf_multinca.errors import Error
from tf_multinca.export import export as export_model
from tf_multinca.hub import Pairing, load, load_pairing
from tf_multinca.injection import inject
from tf_multinca.model import CAModel, WeightMismatchError, make_seed
from tf_multinca.multi import FixedMaskNCA, MultiNCA
from tf_multinca.rollout import grow
from tf_multinca.takeover import TakeoverResult, run_takeover
from tf_multinca.training import train

__all__ = ['CAModel', 'Convention', 'DISTILL', 'Error', 'FixedMaskNCA', 'MultiNCA', 'PAPER',
           'Pairing', 'TakeoverResult', 'WeightMismatchError', 'export_model', 'get_convention',
           'grow', 'inject', 'layout', 'load', 'load_pairing', 'make_seed', 'run_takeover',
           'train']
