"""`python -m tools.export`: the binary `tf_multinca.apps.export`.

Installed, it is the console script `tf-multinca-export`.
"""

from tf_multinca.apps import export as _app

__doc__ = _app.__doc__  # absl prints the main module's docstring as the usage

if __name__ == '__main__':
  _app.run()
