#!/usr/bin/env bash
# Build gnt as one file that needs nothing from the host's libc: dist/gnt (x86_64) or
# dist/gnt-arm64 (aarch64, built under qemu-user in an arm64 Debian root).
#
#   bash build/build.sh [--force] [--arch x86_64|arm64]
#
# Two steps, both in one virtual environment under build/work/venv (or $GNT_BUILD_VENV) on
# Debian's python3, with gnt's dependencies and the `build` extra of pyproject.toml at the
# versions in build/constraints.txt:
# 1. PyInstaller freezes this checkout's source into a one-file binary
#    (build/work/gnt-onefile: it still needs the build host's glibc, >= 2.36 here);
# 2. staticx --no-compress wraps it with the glibc, libm, libz, libexpat... it loads, and a
#    static bootloader that unpacks them and runs the binary with the bundled dynamic loader.
#    staticx must live in the same venv as PyInstaller: it reads the PyInstaller archive to find
#    the libraries inside it need (libpython's libm); from another venv it silently leaves them
#    out. No compression: xz costs ~200 ms on every start.
# 3. build/launcher.c (static, musl) goes in front: it checks $TMPDIR (or /tmp) before anything
#    unpacks there, names TMPDIR as the fix when it is read-only or noexec, then runs the bundle.
# A stamp of the inputs (sources, spec, constraints) lets a second run with nothing changed
# return at once. Needs: python3, python3-venv, libpython3.11, binutils, patchelf, musl-tools —
# in .ci/run's DEBS. --arch arm64 also needs debootstrap, qemu-user-static and binfmt-support: the arm64
# root lives in /var/cache/gnt-build-arm64 (kept across runs and clones; $GNT_ARM64_ROOT), is
# made once by debootstrap and this script runs itself inside it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FORCE=0
ARCH=$(uname -m)
while [ $# -gt 0 ]; do
    case "$1" in
        --force) FORCE=1 ;;
        --arch) ARCH="${2:?--arch needs x86_64 or arm64}"; shift ;;
        *) echo "build.sh: unknown option $1 (use --force, --arch x86_64|arm64)" >&2; exit 2 ;;
    esac
    shift
done
case "$ARCH" in
    x86_64|amd64) ARCH=x86_64 ;;
    arm64|aarch64) ARCH=aarch64 ;;
    *) echo "build.sh: unknown architecture $ARCH (x86_64 or arm64)" >&2; exit 2 ;;
esac

if [ "$ARCH" != "$(uname -m)" ]; then
    # aarch64 on an x86_64 host: the same script, run in an arm64 Debian root under qemu-user.
    [ "$ARCH" = aarch64 ] || { echo "build.sh: cannot build $ARCH on $(uname -m)" >&2; exit 2; }
    ARM_ROOT="${GNT_ARM64_ROOT:-/var/cache/gnt-build-arm64}/rootfs"
    # what build.sh needs inside it (staticx builds from its sdist there: gcc, scons)
    ARM_DEBS=python3,python3-venv,libpython3.11,binutils,patchelf,gcc,libc6-dev,scons,musl-tools
    [ -d /proc/sys/fs/binfmt_misc ] && [ -e /proc/sys/fs/binfmt_misc/register ] || \
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
    if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
        echo "build.sh: qemu-aarch64 is not registered with binfmt_misc (apt-get install qemu-user-static binfmt-support)" >&2
        exit 2
    fi
    if [ ! -x "$ARM_ROOT/usr/bin/python3" ]; then
        mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
        [ -n "$mirror" ] || mirror=$(sed -n 's/^deb[[:space:]]\+\(http[^[:space:]]*\/debian\)[[:space:]].*/\1/p' /etc/apt/sources.list 2>/dev/null | head -1)
        rm -rf "$ARM_ROOT.partial"
        mkdir -p "$(dirname "$ARM_ROOT")"
        debootstrap --arch=arm64 --variant=minbase --include="$ARM_DEBS" \
            bookworm "$ARM_ROOT.partial" "${mirror:-http://deb.debian.org/debian}"
        mv "$ARM_ROOT.partial" "$ARM_ROOT"
    fi
    # a root made by an older build.sh may lack a package added since
    if ! chroot "$ARM_ROOT" dpkg-query -W ${ARM_DEBS//,/ } >/dev/null 2>&1; then
        chroot "$ARM_ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin sh -c \
            "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ${ARM_DEBS//,/ }"
    fi
    # the checkout is copied in (not bind-mounted: PyInstaller's work files stay in the root)
    mkdir -p "$ARM_ROOT/src"
    tar -C "$ROOT" --exclude=./build/work --exclude=./dist --exclude=./.git -cf - . | \
        { rm -rf "$ARM_ROOT/src/gnt"; mkdir "$ARM_ROOT/src/gnt"; tar -C "$ARM_ROOT/src/gnt" -xf -; }
    # the last build's work directory and output come back, so the stamp can spare a rebuild
    mkdir -p "$ARM_ROOT/src/work"
    [ -d "$ARM_ROOT/src/work/build-work" ] && mv "$ARM_ROOT/src/work/build-work" "$ARM_ROOT/src/gnt/build/work"
    [ -d "$ARM_ROOT/src/work/dist" ] && mv "$ARM_ROOT/src/work/dist" "$ARM_ROOT/src/gnt/dist"
    # pip in the root trusts what pip here trusts (a TLS-inspecting proxy's CA, when there is one)
    cert="${PIP_CERT:-$(sed -n 's/^cert[[:space:]]*=[[:space:]]*//p' /etc/pip.conf "$HOME/.config/pip/pip.conf" 2>/dev/null | head -1)}"
    pip_env=()
    if [ -n "$cert" ] && [ -f "$cert" ]; then
        cp "$cert" "$ARM_ROOT/etc/gnt-build-pip-ca.crt"
        pip_env+=(PIP_CERT=/etc/gnt-build-pip-ca.crt)
    fi
    args=()
    [ "$FORCE" = 1 ] && args+=(--force)
    unshare --mount --fork sh -c 'mount -t proc proc "$1/proc" && shift && exec chroot "$@"' sh \
        "$ARM_ROOT" "$ARM_ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        "${pip_env[@]}" GNT_BUILD_VENV=/var/cache/gnt-build-venv bash /src/gnt/build/build.sh "${args[@]}"
    mkdir -p "$ROOT/dist"
    cp "$ARM_ROOT/src/gnt/dist/gnt" "$ROOT/dist/gnt-arm64.tmp"
    mv "$ARM_ROOT/src/gnt/build/work" "$ARM_ROOT/src/work/build-work"
    mv "$ARM_ROOT/src/gnt/dist" "$ARM_ROOT/src/work/dist"
    mv "$ROOT/dist/gnt-arm64.tmp" "$ROOT/dist/gnt-arm64"
    echo "build.sh: dist/gnt-arm64 $(($(stat -c %s "$ROOT/dist/gnt-arm64") / 1024)) KiB"
    exit 0
fi

WORK="$ROOT/build/work"
VENV="${GNT_BUILD_VENV:-$WORK/venv}"  # the tests keep theirs under /var/cache across clones
PYTHON="${GNT_BUILD_PYTHON:-/usr/bin/python3}"
ONEFILE="$WORK/onefile/gnt"  # step 1's output (named gnt: ps shows it); bench/bench_startup.py times it

cd "$ROOT"
mkdir -p "$WORK" "$ROOT/dist"

inputs_hash() {
    { find gnt -name '*.py' -print0 | sort -z | xargs -0 sha256sum
      sha256sum pyproject.toml build/gnt.spec build/gnt_entry.py build/constraints.txt build/build.sh build/launcher.c
    } | sha256sum | cut -d' ' -f1
}
STAMP="$WORK/dist.stamp"
HASH=$(inputs_hash)
if [ "$FORCE" = 0 ] && [ -x dist/gnt ] && [ -x "$ONEFILE" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ]; then
    echo "build.sh: dist/gnt is up to date"
    exit 0
fi

for tool in patchelf objcopy strip ldd musl-gcc; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool is missing (apt-get install patchelf binutils musl-tools)" >&2; exit 2; }
done
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

rm -f dist/gnt "$ONEFILE" "$STAMP"
GNT_BUILD_WORK="$WORK" "$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --distpath "$WORK/onefile" --workpath "$WORK/pyinstaller" build/gnt.spec
# staticx runs from the venv (PATH too: it looks for PyInstaller's archive reader there)
PATH="$VENV/bin:$PATH" "$VENV/bin/staticx" --no-compress "$ONEFILE" "$WORK/bundle"
musl-gcc -static -Os -s -Wall -Wextra -Werror -o "$WORK/launcher" build/launcher.c
# dist/gnt = launcher, bundle, then the bundle's offset (8 bytes, little-endian) and the magic
"$VENV/bin/python" - "$WORK/launcher" "$WORK/bundle" dist/gnt.tmp <<'PY'
import shutil, struct, sys
launcher, bundle, out = sys.argv[1:]
with open(out, "wb") as dest:
    for part in (launcher, bundle):
        with open(part, "rb") as src:
            shutil.copyfileobj(src, dest)
    with open(launcher, "rb") as src:
        dest.write(struct.pack("<Q", len(src.read())) + b"GNTBNDL1")
PY
chmod 0755 dist/gnt.tmp
mv dist/gnt.tmp dist/gnt

echo "$HASH" > "$STAMP"
size=$(stat -c %s dist/gnt)
echo "build.sh: dist/gnt $((size / 1024)) KiB; $(env -i dist/gnt --version --verbose | tr '\n' ' ')"
