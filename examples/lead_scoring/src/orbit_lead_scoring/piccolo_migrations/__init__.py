"""Lead scoring's migrations, applied by ``orbit migrate``."""
