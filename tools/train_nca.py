"""`python -m tools.train_nca`: the binary `tf_multinca.apps.train_nca`.

Installed, it is the console script `tf-multinca-train-nca`.
"""

from tf_multinca.apps import train_nca as _app

__doc__ = _app.__doc__  # absl prints the main module's docstring as the usage

if __name__ == '__main__':
  _app.run()
