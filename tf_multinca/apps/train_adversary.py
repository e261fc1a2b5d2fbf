r"""Train an adversary of the paper (Adversarial Takeover of NCA): the frozen original is rule 0.

    python -m tools.train_adversary --workdir=runs/lizard_red            # the main job
    python -m tools.train_adversary --config=lizard_no_tail --workdir=runs/no_tail
    python -m tools.train_adversary --config=lizard_red --set=steps=800 --set=lr=1e-3 \
        --workdir=runs/lizard_red_long
    python -m tools.train_adversary --list_configs

A run resumes from the last checkpoint in --workdir. Exit status: 0 done, 2 bad input,
3 the loss diverged (the last good checkpoint is kept). The work is in tf_multinca.training.
"""

from absl import flags

from tf_multinca import binary
from tf_multinca import configs
from tf_multinca.training import cli

_DIRECT = cli.define_flags('adversary', configs.DEFAULT_ADVERSARY)
# The flags live in training/cli.py; adopting them makes --help list them here.
flags.adopt_module_key_flags(cli)


def main(argv):
  return cli.main('adversary', _DIRECT, argv)



def run():
  """The console script's entry point (and `python -m tools.train_adversary`'s)."""
  binary.run(main, __name__)


if __name__ == '__main__':
  run()
