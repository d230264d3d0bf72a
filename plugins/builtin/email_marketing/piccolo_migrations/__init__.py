"""Email marketing's migrations, applied by ``orbit migrate``."""
