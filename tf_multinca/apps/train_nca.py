r"""Train a single NCA as Distill's Growing NCA does: growing, persistent or regenerating.

    python -m tools.train_nca --config=nca_persistent --workdir=runs/nca_lizard
    python -m tools.train_nca --config=nca_growing --target=🦋 --workdir=runs/nca_butterfly
    python -m tools.train_nca --config=nca_paper_persistent --register=local/lizard_persist \
        --workdir=runs/nca_paper_lizard     # then usable as an --original of train_adversary
    python -m tools.train_nca --list_configs

--register writes the name into <workdir>/registered.json and the user's registry,
$XDG_CONFIG_HOME/tf_multinca/registry.json (~/.config/...; $TF_MULTINCA_LOCAL_MANIFEST names
another file), which every binary reads.

A run resumes from the last checkpoint in --workdir. Exit status: 0 done, 2 bad input (or
--workdir in use by another run, which holds <workdir>/.lock), 3 the loss diverged, 4 a lost
worker of a multi-worker job, 5 the file system is full, 130 interrupted (Ctrl-C), 143
preempted (SIGTERM). After 4, 5, 130 and 143 the same command resumes; on Ctrl-C or SIGTERM
the run checkpoints the step it finishes, and after SIGTERM it exits within
$TF_MULTINCA_PREEMPT_GRACE_S seconds (default 25). The work is in tf_multinca.training.
"""

from tf_multinca import binary
from tf_multinca import configs
from tf_multinca.training import cli

main = cli.define_binary('nca', configs.DEFAULT_NCA)
run = binary.entry(main)  # the console script's entry point

if __name__ == '__main__':
  run()
