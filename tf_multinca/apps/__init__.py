"""The binaries: `python -m tools.<name>` in a checkout, `tf-multinca-<name>` when installed.

Each module defines its absl flags and a `main`; `run()` (the console script's entry point)
makes `--help` list its flags and runs it under `binary.run` (one-line errors, exit statuses).
"""
