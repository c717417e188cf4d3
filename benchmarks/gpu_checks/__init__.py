"""The checks of ``benchmarks/gpu_check.py`` (its docstring says what they cover), by concern:
``harness`` (sizes, the report, ``ganorch`` commands in subprocesses, tables read back),
``sweeps``, ``evaluation`` (``eval run`` and ``grid augment``), ``in_process``, ``throughput``."""
