"""`python -m tools.train_adversary`: the binary `tf_multinca.apps.train_adversary`.

Installed, it is the console script `tf-multinca-train-adversary`.
"""

from tf_multinca.apps import train_adversary as _app

__doc__ = _app.__doc__  # absl prints the main module's docstring as the usage

if __name__ == '__main__':
  _app.run()
