#!/usr/bin/env bash
# Install one wheel into a fresh virtual environment per (CPython, NumPy) pair, with the test
# extra only and no cargo on PATH, and run the test suite against that install.
#
#   scripts/test-matrix.sh WHEEL VERSION:NUMPY...
#
# VERSION is a CPython minor version (3.9); NUMPY is an exact NumPy version, or "newest" for
# the newest that installs. Interpreters are found under pyenv's root, else on PATH; a
# missing one fails the run (the package claims every version it lists).
set -euo pipefail
wheel=$(realpath "$1")
shift
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}

interpreter() {
  local found
  found=$(find "$pyenv_root/versions" -maxdepth 3 -path "*/versions/$1.*/bin/python$1" 2>/dev/null | sort -V | tail -n 1)
  [ -n "$found" ] || found=$(command -v "python$1" || true)
  [ -n "$found" ] || { echo "test-matrix: no CPython $1 (looked in $pyenv_root/versions and on PATH)" >&2; return 1; }
  echo "$found"
}

summary=()
for pair in "$@"; do
  version=${pair%%:*} numpy=${pair#*:}
  python=$(interpreter "$version")
  venv=$work/$version-$numpy
  echo "=== CPython $version, NumPy $numpy ($python)"
  "$python" -m venv "$venv"
  pin=()
  [ "$numpy" = newest ] || pin=("numpy==$numpy")
  (
    # Only the environment's own scripts and the system's: no cargo, no rustc.
    export PATH="$venv/bin:/usr/local/bin:/usr/bin:/bin"
    if command -v cargo >/dev/null; then echo "test-matrix: cargo is on PATH" >&2; exit 1; fi
    python -m pip install --quiet --disable-pip-version-check "$wheel[test]" "${pin[@]}"
    got=$(python -c 'import gradfast, numpy, sys
assert gradfast.__file__.startswith(sys.prefix), gradfast.__file__
print(numpy.__version__)')
    [ "$numpy" = newest ] || [ "$got" = "$numpy" ] || { echo "test-matrix: got NumPy $got, not $numpy" >&2; exit 1; }
    echo "$got" >"$venv/numpy-version"
    python -m pytest -q -p no:cacheprovider -rs
  )
  summary+=("CPython $($venv/bin/python -c 'import platform; print(platform.python_version())'), NumPy $(cat "$venv/numpy-version"): passed")
done
printf '%s\n' "=== the wheel $(basename "$wheel") passed on:" "${summary[@]}"
