"""`python -m tools.pretrained`: the binary `tf_multinca.apps.pretrained`.

Installed, it is the console script `tf-multinca-pretrained`.
"""

from tf_multinca.apps import pretrained as _app

__doc__ = _app.__doc__  # absl prints the main module's docstring as the usage

if __name__ == '__main__':
  _app.run()
