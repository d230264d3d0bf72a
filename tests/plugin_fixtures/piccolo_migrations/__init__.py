"""The probe plugin's migrations."""
