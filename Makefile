# The exact commands CI runs (.ci/run) and the README gives. PYTHON is the interpreter to
# install into: a virtual environment's python, or the machine's.
PYTHON ?= python3

.PHONY: install test bench lint-tools lint rust-test bench-smoke ci

# Build the release extension and install gradfast with its test tools.
install:
	$(PYTHON) -m pip install ".[test]"

# Install, then run the test suite (hypothesis profile "fast" unless told otherwise).
test: install
	GRADFAST_HYPOTHESIS_PROFILE=$${GRADFAST_HYPOTHESIS_PROFILE:-fast} $(PYTHON) -m pytest

# Install, then run the main job: the benchmark tables.
bench:
	$(PYTHON) -m pip install .
	$(PYTHON) -m gradfast bench

# ruff comes with the test extra (same bounds there); lint before installing needs it on its own.
lint-tools:
	$(PYTHON) -m pip install --quiet "ruff>=0.6,<0.18"

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(PYTHON) -m ruff check python tests benches

rust-test:
	cargo test --workspace

# pytest-benchmark's comparisons, as a quick smoke run (timing off).
bench-smoke:
	$(PYTHON) -m pytest benches -q

ci: lint rust-test test bench-smoke
