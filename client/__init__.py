"""The ``ipoc`` command-line interface."""
