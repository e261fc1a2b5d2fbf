"""Training: one custom loop for adversaries (the paper) and single NCAs (Distill).

    from tf_multinca import configs, training
    training.train(configs.get_config('lizard_red'), 'runs/lizard_red')

Modules: `loop` (Trainer, train), `schedules` (loss weights over age, learning rates), `pool`
(device-resident sample pool, damage), `evaluate`, `export` (SavedModel, WebGL JSON), `sweep`
(fig. 15), `reproduce` (the paper's experiments into the results zoo).
"""

from tf_multinca.training.loop import DivergedError, Trainer, TrainingError, train

__all__ = ['DivergedError', 'Trainer', 'TrainingError', 'train']
