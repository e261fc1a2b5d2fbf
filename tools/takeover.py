"""`python -m tools.takeover`: the binary `tf_multinca.apps.takeover`.

Installed, it is the console script `tf-multinca-takeover`.
"""

from tf_multinca.apps import takeover as _app

__doc__ = _app.__doc__  # absl prints the main module's docstring as the usage

if __name__ == '__main__':
  _app.run()
