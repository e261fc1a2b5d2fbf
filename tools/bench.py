"""`python -m tools.bench`: the binary `tf_multinca.apps.bench`.

Installed, it is the console script `tf-multinca-bench`.
"""

from tf_multinca.apps import bench as _app

__doc__ = _app.__doc__  # absl prints the main module's docstring as the usage

if __name__ == '__main__':
  _app.run()
