"""`python -m tools.reproduce`: the binary `tf_multinca.apps.reproduce`.

Installed, it is the console script `tf-multinca-reproduce`.
"""

from tf_multinca.apps import reproduce as _app

__doc__ = _app.__doc__  # absl prints the main module's docstring as the usage

if __name__ == '__main__':
  _app.run()
