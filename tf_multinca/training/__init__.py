"""Training: one custom loop for adversaries (the paper) and single NCAs (Distill).

    from tf_multinca import configs, training
    training.train(configs.get_config('lizard_red'), 'runs/lizard_red')

Modules: `loop` (Trainer, train), `workdir` (config check, provenance, checkpoints),
`samples` (fresh samples, the pool policy), `pool` (device-resident sample pool, damage), `step`
(the train step), `schedules` (loss weights over age, learning rates), `evaluate`, `summaries`
(TensorBoard), `distribute` (tf.distribute strategies, multi-worker), `fanout` (runs in several
processes), `sweep` (fig. 15), `reproduce` (the paper's experiments into the results zoo), `cli`.
"""

from tf_multinca.training.loop import DivergedError, Trainer, TrainingError, train

__all__ = ['DivergedError', 'Trainer', 'TrainingError', 'train']
