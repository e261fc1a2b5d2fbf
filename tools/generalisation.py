"""`python -m tools.generalisation`: the binary `tf_multinca.apps.generalisation`.

Installed, it is the console script `tf-multinca-generalisation`.
"""

from tf_multinca.apps import generalisation as _app

__doc__ = _app.__doc__  # absl prints the main module's docstring as the usage

if __name__ == '__main__':
  _app.run()
