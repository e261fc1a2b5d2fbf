"""`python -m tools.takeover_report`: the binary `tf_multinca.apps.takeover_report`.

Installed, it is the console script `tf-multinca-takeover-report`.
"""

from tf_multinca.apps import takeover_report as _app

__doc__ = _app.__doc__  # absl prints the main module's docstring as the usage

if __name__ == '__main__':
  _app.run()
