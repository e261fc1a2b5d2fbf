r"""Train an adversary of the paper (Adversarial Takeover of NCA): the frozen original is rule 0.

    python -m tools.train_adversary --workdir=runs/lizard_red            # the main job
    python -m tools.train_adversary --config=lizard_no_tail --workdir=runs/no_tail
    python -m tools.train_adversary --config=lizard_red --set=steps=800 --set=lr=1e-3 \
        --workdir=runs/lizard_red_long
    python -m tools.train_adversary --list_configs

A run resumes from the last checkpoint in --workdir. Exit status: 0 done, 2 bad input (or
--workdir in use by another run: one process writes a workdir, holding <workdir>/.lock),
3 the loss diverged (the last good checkpoint is kept), 4 a worker of a --strategy=multi_worker
job was lost (rerun every worker to resume), 5 the file system is full (free space, then rerun
to resume), 130 interrupted (Ctrl-C), 143 preempted (SIGTERM). On Ctrl-C or SIGTERM the run
finishes its step, checkpoints it and says so; rerun the same command to resume, with nothing
lost. After SIGTERM the process exits within $TF_MULTINCA_PREEMPT_GRACE_S seconds (default 25)
whatever it is doing. The work is in tf_multinca.training.
"""

from tf_multinca import binary
from tf_multinca import configs
from tf_multinca.training import cli

main = cli.define_binary('adversary', configs.DEFAULT_ADVERSARY)
run = binary.entry(main)  # the console script's entry point

if __name__ == '__main__':
  run()
