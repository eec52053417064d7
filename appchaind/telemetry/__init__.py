"""What a node tells its operator: structured logs (``logs``) and Prometheus metrics
(``metrics``)."""
