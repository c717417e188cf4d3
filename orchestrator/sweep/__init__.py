"""`ganorch sweep`: strict experiment specs, their search spaces, the Ray Tune run and the
driver-side callbacks that record it."""
