#!/usr/bin/env bash
# Build dist/gnt: gnt as one file for x86_64 Linux, from a clean checkout.
#
#   bash build/build.sh [--force]
#
# Installs what it needs itself: a virtual environment under build/work/venv (or
# $GNT_BUILD_VENV) on Debian's python3 (its libpython3.11 goes into the binary), with gnt's
# dependencies and PyInstaller (the `build` extra of pyproject.toml) at the versions in
# build/constraints.txt. gnt itself is frozen from this checkout's source, not installed.
# A stamp of the inputs (sources, spec, constraints) lets a second run with nothing changed
# return at once. Needs: python3, python3-venv, libpython3.11, binutils (strip, objdump) —
# all in .ci/run's DEBS.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK="$ROOT/build/work"
VENV="${GNT_BUILD_VENV:-$WORK/venv}"  # the tests keep theirs under /var/cache across clones
PYTHON="${GNT_BUILD_PYTHON:-/usr/bin/python3}"
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

cd "$ROOT"
mkdir -p "$WORK" "$ROOT/dist"

inputs_hash() {
    { find gnt -name '*.py' -print0 | sort -z | xargs -0 sha256sum
      sha256sum pyproject.toml build/gnt.spec build/gnt_entry.py build/constraints.txt build/build.sh
    } | sha256sum | cut -d' ' -f1
}
STAMP="$WORK/dist.stamp"
HASH=$(inputs_hash)
if [ "$FORCE" = 0 ] && [ -x dist/gnt ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ]; then
    echo "build.sh: dist/gnt is up to date"
    exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
# gnt's runtime dependencies and the build extra, read from pyproject.toml (gnt itself is not
# installed: PyInstaller takes it from the checkout, so the binary is exactly this source).
"$VENV/bin/python" - > "$WORK/requirements.txt" <<'PY'
import tomllib
with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]
for requirement in project["dependencies"] + project["optional-dependencies"]["build"]:
    print(requirement)
PY
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$WORK/requirements.txt" -c build/constraints.txt

rm -f dist/gnt "$STAMP"
GNT_BUILD_WORK="$WORK" "$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --distpath "$ROOT/dist" --workpath "$WORK/pyinstaller" build/gnt.spec

echo "$HASH" > "$STAMP"
size=$(stat -c %s dist/gnt)
echo "build.sh: dist/gnt $((size / 1024)) KiB; $(env -i dist/gnt --version --verbose | tr '\n' ' ')"
