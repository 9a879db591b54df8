# The exact commands CI runs (.ci/run) and the README gives. PYTHON is the interpreter to
# install into: a virtual environment's python, or the machine's.
PYTHON ?= python3

.PHONY: install dev test bench demo docs lint-tools lint typecheck rust-test bench-smoke check ci

# Build the release extension and install gradfast with its test tools, MPI (the tests of
# gradfast.distributed run under the mpiexec of the mpich wheel) and the demo's extra (it is tested).
install:
	$(PYTHON) -m pip install ".[test,mpi,demo]"

# The edit loop: an editable install built without link-time optimisation (quick to rebuild;
# run it again after changing Rust). Measure speed on `make install` builds only.
dev:
	CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 $(PYTHON) -m pip install -e ".[test,mpi,demo]"

# Install, then run the test suite (hypothesis profile "fast" unless told otherwise).
test: install
	GRADFAST_HYPOTHESIS_PROFILE=$${GRADFAST_HYPOTHESIS_PROFILE:-fast} $(PYTHON) -m pytest

# Install, then run the main job: the benchmark tables.
bench:
	$(PYTHON) -m pip install .
	$(PYTHON) -m gradfast bench

# Install with the demo extra, then train the demo's models with every piece of gradfast.
demo:
	$(PYTHON) -m pip install ".[demo]"
	$(PYTHON) -m gradfast demo

# The user documentation with its API reference, generated from the docstrings of the installed
# gradfast, into site/; any warning (a broken link, a name that does not resolve) fails the build.
docs:
	$(PYTHON) -m pip install --quiet ".[docs]"
	$(PYTHON) -m mkdocs build --strict

# The linters come with the test extra (same bounds there); linting before installing needs them alone.
lint-tools:
	$(PYTHON) -m pip install --quiet "ruff>=0.6,<0.18" "mypy>=1.10,<3"

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(PYTHON) -m ruff check python tests benches
	$(PYTHON) -m ruff format --check python tests benches

# Types of the Python package, and the hand-written stub of the extension against the
# extension itself (needs gradfast installed).
typecheck:
	$(PYTHON) -m mypy
	$(PYTHON) -m mypy.stubtest gradfast._core --allowlist stubtest-allowlist.txt

rust-test:
	cargo test --workspace

# pytest-benchmark's comparisons, as a quick smoke run (timing off).
bench-smoke:
	$(PYTHON) -m pytest benches -q

# Everything CI checks, on the current install (after `make dev`).
check: lint rust-test typecheck
	GRADFAST_HYPOTHESIS_PROFILE=$${GRADFAST_HYPOTHESIS_PROFILE:-fast} $(PYTHON) -m pytest
	$(PYTHON) -m pytest benches -q

ci: lint rust-test test typecheck bench-smoke docs
