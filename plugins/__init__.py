"""The plugin platform: hookspecs, manager, marketplace (the plugin issue builds it)."""
