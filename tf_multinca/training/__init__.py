"""Training: one custom loop for adversaries (the paper) and single NCAs (Distill).

    from tf_multinca import configs, training
    training.train(configs.get_config('lizard_red'), 'runs/lizard_red')

Modules: `loop` (Trainer, train), `schedules` (loss weights over age, learning rates), `pool`
(device-resident sample pool, damage), `evaluate`, `export` (SavedModel, .weights.h5, WebGL
JSON and read-back), `registry` (local registration, `resolve`), `sweep` (fig. 15).
"""

from tf_multinca.training.loop import DivergedError, Trainer, TrainingError, train
from tf_multinca.training.registry import resolve

__all__ = ['DivergedError', 'Trainer', 'TrainingError', 'resolve', 'train']
