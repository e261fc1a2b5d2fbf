"""`python -m tools.grow`: the binary `tf_multinca.apps.grow`.

Installed, it is the console script `tf-multinca-grow`.
"""

from tf_multinca.apps import grow as _app

__doc__ = _app.__doc__  # absl prints the main module's docstring as the usage

if __name__ == '__main__':
  _app.run()
