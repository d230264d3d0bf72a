"""Quotes & invoices migrations, applied by ``orbit migrate``."""
