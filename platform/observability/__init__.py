"""What an operator sees: structured logs, one access line per request, Prometheus metrics."""
