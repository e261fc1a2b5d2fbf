"""`python -m tools.perturbation_sweep`: the binary `tf_multinca.apps.perturbation_sweep`.

Installed, it is the console script `tf-multinca-perturbation-sweep`.
"""

from tf_multinca.apps import perturbation_sweep as _app

__doc__ = _app.__doc__  # absl prints the main module's docstring as the usage

if __name__ == '__main__':
  _app.run()
