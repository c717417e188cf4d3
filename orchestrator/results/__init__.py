"""`ganorch results` and `ganorch tensorboard`: a run's tables and event files read back."""
