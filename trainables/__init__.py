"""What a trial runs: datasets, GAN families, objectives and the Tune trainable.

Trainables may call ``ray.tune.report`` and ``ray.tune.get_checkpoint`` and nothing else of Ray;
the orchestrator owns every other Ray call.
"""
