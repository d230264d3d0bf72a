"""Domain events: the transactional outbox, the worker that delivers it, outgoing webhooks."""
