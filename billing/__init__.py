"""Billing: plans, entitlements, Stripe (the billing issue builds it)."""
