"""The ``orbit`` command line."""
