"""Projects migrations, applied by ``orbit migrate``."""
