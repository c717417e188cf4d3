"""`ganorch eval` and `ganorch metrics`: the metric registry and what its measures share, the
shard plan, the actor job, the eval table's rows and pivot, the figures and the driver."""
