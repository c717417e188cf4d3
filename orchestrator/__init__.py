"""Control plane: CLI, experiment specs, Ray Tune submission and result tables."""
