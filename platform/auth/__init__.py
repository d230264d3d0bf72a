"""Authentication: users, passwords, sessions, API keys, CSRF, login throttling."""
