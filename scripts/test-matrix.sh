#!/usr/bin/env bash
# Install one wheel into a fresh virtual environment per (CPython, NumPy) pair, with the test
# extra only and no cargo on PATH, and run the test suite against that install.
#
#   scripts/test-matrix.sh WHEEL VERSION:NUMPY...
#
# VERSION is a CPython minor version (3.9); NUMPY is an exact NumPy version, or "newest" for
# the newest that installs. Interpreters are found under pyenv's root, else on PATH; a
# missing one fails the run (the package claims every version it lists). The environments
# are installed all at once (downloads overlap), then tested one after the other.
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

# Only the environment's own scripts and the system's: no cargo, no rustc.
isolated() {
  local venv=$1
  shift
  env -u PYTHONPATH PATH="$venv/bin:/usr/local/bin:/usr/bin:/bin" "$@"
}

install() {
  local venv=$1 numpy=$2 pin=()
  [ "$numpy" = newest ] || pin=("numpy==$numpy")
  isolated "$venv" python -m pip install --quiet --disable-pip-version-check "$wheel[test]" "${pin[@]}"
  isolated "$venv" python -c 'import gradfast, numpy, sys
assert gradfast.__file__.startswith(sys.prefix), gradfast.__file__
print(numpy.__version__)' >"$venv/numpy-version"
  local got
  got=$(cat "$venv/numpy-version")
  [ "$numpy" = newest ] || [ "$got" = "$numpy" ] || { echo "test-matrix: got NumPy $got, not $numpy" >&2; return 1; }
}

pids=()
for pair in "$@"; do
  version=${pair%%:*} numpy=${pair#*:}
  python=$(interpreter "$version")
  venv=$work/$version-$numpy
  "$python" -m venv "$venv"
  if isolated "$venv" sh -c 'command -v cargo'; then echo "test-matrix: cargo is on PATH" >&2; exit 1; fi
  install "$venv" "$numpy" >"$venv.log" 2>&1 &
  pids+=($!)
done
i=0
for pair in "$@"; do
  version=${pair%%:*} numpy=${pair#*:}
  wait "${pids[$i]}" || { echo "test-matrix: installing for CPython $version, NumPy $numpy failed:" >&2; cat "$work/$version-$numpy.log" >&2; exit 1; }
  i=$((i + 1))
done

summary=()
for pair in "$@"; do
  version=${pair%%:*} numpy=${pair#*:}
  venv=$work/$version-$numpy
  label="CPython $(isolated "$venv" python -c 'import platform; print(platform.python_version())'), NumPy $(cat "$venv/numpy-version")"
  echo "=== $label"
  isolated "$venv" python -m pytest -q -p no:cacheprovider -rs
  summary+=("$label: passed")
done
printf '%s\n' "=== the wheel $(basename "$wheel") passed on:" "${summary[@]}"
