# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint bench gpu-check clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ganorch sweep run examples/quick.yaml
	$(VENV)/bin/ganorch results show quick --sort fid --top 10
	@echo
	@echo "TensorBoard (curves and 8x8 sample grids of every trial):"
	@echo "  $(VENV)/bin/ganorch tensorboard quick      # then open http://127.0.0.1:6006"

# Two test processes (one file each at a time, module fixtures intact): most tests wait on
# Ray, subprocesses and sockets, so two share the 2 cores well.
test: $(STAMP)
	@command -v chromium >/dev/null || echo "note: without headless Chromium the report page's browser check is skipped; to run it: sudo apt-get install chromium"
	$(PY) -m pytest -q -n 2 --dist loadfile -rs --durations=20

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) benchmarks/bench_trainable.py

# Every CUDA path in one run (minutes); exits 3 with one line where there is no CUDA device.
gpu-check: $(STAMP)
	$(PY) benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

clean:
	rm -rf runs .pytest_cache
