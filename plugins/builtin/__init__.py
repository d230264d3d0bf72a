"""The plugins that ship with Orbit: email marketing, quotes & invoices, projects.

Each is a package here, listed in :data:`orbit.plugins.registry.BUILTIN`, and is built
only on :mod:`orbit.plugins.api`, exactly as a third-party plugin would be
(``tests/unit/test_builtin_plugins.py`` checks the imports).
"""
