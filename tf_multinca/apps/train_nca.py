r"""Train a single NCA as Distill's Growing NCA does: growing, persistent or regenerating.

    python -m tools.train_nca --config=nca_persistent --workdir=runs/nca_lizard
    python -m tools.train_nca --config=nca_growing --target=🦋 --workdir=runs/nca_butterfly
    python -m tools.train_nca --config=nca_paper_persistent --register=local/lizard_persist \
        --workdir=runs/nca_paper_lizard     # then usable as an --original of train_adversary
    python -m tools.train_nca --list_configs

A run resumes from the last checkpoint in --workdir. Exit status: 0 done, 2 bad input,
3 the loss diverged. The work is in tf_multinca.training.
"""

from absl import flags

from tf_multinca import binary
from tf_multinca import configs
from tf_multinca.training import cli

_DIRECT = cli.define_flags('nca', configs.DEFAULT_NCA)
# The flags live in training/cli.py; adopting them makes --help list them here.
flags.adopt_module_key_flags(cli)


def main(argv):
  return cli.main('nca', _DIRECT, argv)



def run():
  """The console script's entry point (and `python -m tools.train_nca`'s)."""
  binary.run(main, __name__)


if __name__ == '__main__':
  run()
