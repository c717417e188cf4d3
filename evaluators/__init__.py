"""Pure measurement: functions from tensors to numbers, judge networks and feature extractors.

No Ray, no CLI, and no files except explicit cache paths handed in by the caller.
"""
