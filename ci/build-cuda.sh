#!/usr/bin/env bash
# Builds groundtruth with `--features cuda` on a machine with no GPU and no CUDA install, so
# the CUDA code is compiled and linked here even though nothing here can run it. Then
# assembles a bundle to carry to a GPU machine: the binary and the CUDA libraries it loads.
#
#   ci/build-cuda.sh            # -> target/cuda/bundle/{groundtruth,lib/}
#
# What it does, and why:
# - Installs the CUDA 13.0 toolchain wheels pinned (with hashes) in ci/requirements-cuda.txt
#   into a cache folder outside the repository ($GROUNDTRUTH_CUDA_CACHE, default
#   ~/.cache/groundtruth/cuda-13.0). 13.0, not newer: the GPU machines at hand run driver 580
#   (CUDA 13.0), which cannot load PTX of a newer ISA.
# - Lays the wheels out as a CUDA install (bin, include, nvvm, lib64 with unversioned .so
#   links) and points CUDA_HOME/CUDA_PATH/CUDA_ROOT at it. CUDA_COMPUTE_CAP=90 (Hopper):
#   there is no GPU (and no nvidia-smi) for candle's build to ask.
# - candle-core 0.11 asks cudarc for `dynamic-linking`, so cudarc's build script links
#   `-lcuda`, and no wheel ships the driver library. A link stub libcuda.so (soname
#   libcuda.so.1, every cu* entry point of cudarc's bindings returning 34,
#   CUDA_ERROR_STUB_LIBRARY) goes in lib64/stubs/ for the linker only; it is never carried.
# - The binary loads CUDA at run time instead of at start-up: the build compiles cudarc with
#   its `dynamic-loading` code path (RUSTFLAGS `--cfg feature="dynamic-loading"`, applied
#   only to target crates because of the explicit `--target`, so cudarc's build script,
#   which refuses both features at once, does not see it). Its bindings then dlopen
#   libcuda.so.1, libcublas.so.13 ... on first use, and nothing references the stub, so the
#   linker's --as-needed drops it from the binary's dependencies. A cuda binary therefore
#   starts on any Linux machine: with no driver, `--device cuda` is "no GPU device" (a skip
#   in claims, exit 2 for a command that needs the GPU), and every CPU claim runs. The script
#   checks that the binary needs no CUDA library at start-up.
# - The CUDA runtime (libcudart, which candle-kernels' MoE kernels link) is linked
#   statically for the same reason.
# - Builds into its own target folder ($CUDA_TARGET_DIR, default target/cuda), so the CPU
#   build's cache is untouched.
#
# A user with a GPU does not need this: install the CUDA toolkit (13.x, matching the driver)
# and run `cargo build --release --features cuda` (candle's default dynamic linking; the
# driver provides libcuda.so.1).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache=${GROUNDTRUTH_CUDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/groundtruth/cuda-13.0}
target_dir=${CUDA_TARGET_DIR:-$root/target/cuda}
python=${PYTHON:-python3}
triple=x86_64-unknown-linux-gnu
req=ci/requirements-cuda.txt

die() { echo "build-cuda: $*" >&2; exit 2; }
[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || die "needs Linux on x86_64 (the wheels and the triple are x86_64 Linux)"
for tool in cargo cc readelf "$python"; do
    command -v "$tool" >/dev/null || die "\`$tool\` not found on PATH"
done

# 1. The toolchain wheels, reinstalled when the pinned list changes.
wheels=$cache/wheels
stamp=$(sha256sum "$req" | cut -d' ' -f1)
if [ "$(cat "$wheels/.requirements-sha256" 2>/dev/null)" != "$stamp" ]; then
    echo "build-cuda: installing the CUDA 13.0 wheels into $wheels" >&2
    rm -rf "$wheels.tmp"
    "$python" -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
        --target "$wheels.tmp" -r "$req"
    echo "$stamp" >"$wheels.tmp/.requirements-sha256"
    rm -rf "$wheels"
    mv "$wheels.tmp" "$wheels"
fi
cu=$wheels/nvidia/cu13
[ -x "$cu/bin/nvcc" ] || die "$cu/bin/nvcc missing after installing $req"

# 2. A CUDA_HOME layout over the wheels (symlinks; rebuilt every run, it is cheap).
home=$cache/toolkit
rm -rf "$home"
mkdir -p "$home/lib64/stubs"
for d in bin include nvvm; do ln -s "$cu/$d" "$home/$d"; done
for f in "$cu"/lib/*.so.*; do
    ln -s "$f" "$home/lib64/$(basename "$f")"
done
for lib in nvrtc cublas cublasLt curand; do
    versioned=$(cd "$home/lib64" && ls "lib$lib".so.* | grep -v alt | head -n1)
    ln -s "$versioned" "$home/lib64/lib$lib.so"
done
# candle-kernels links its MoE kernels' host code against the CUDA runtime (`-lcudart`).
# With no libcudart.so on the search path the linker takes the static archive, so the
# binary does not need libcudart.so.13 to start (the runtime loads the driver itself, and
# only when those kernels run).
ln -s "$cu/lib/libcudart_static.a" "$home/lib64/libcudart.a"

# 3. The link stub for libcuda (see above), from the entry points cudarc declares.
cargo fetch --locked >/dev/null
sys_rs=$(cargo metadata --locked --format-version 1 --features cuda 2>/dev/null |
    "$python" -c 'import json,sys,os
m=json.load(sys.stdin)
p=[x for x in m["packages"] if x["name"]=="cudarc"]
print(os.path.join(os.path.dirname(p[0]["manifest_path"]),"src/driver/sys/mod.rs"))')
[ -f "$sys_rs" ] || die "cudarc's driver bindings not found ($sys_rs)"
stub_c=$home/lib64/stubs/libcuda_stub.c
{
    echo "/* Link stub generated by ci/build-cuda.sh from $sys_rs: never loaded on a GPU machine. */"
    grep -o 'pub unsafe fn cu[A-Za-z0-9_]*' "$sys_rs" | sed 's/pub unsafe fn //' | sort -u |
        sed 's/.*/int &(void) { return 34; }/'
} >"$stub_c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$home/lib64/stubs/libcuda.so" "$stub_c"
ln -s libcuda.so "$home/lib64/stubs/libcuda.so.1"

# 4. The build.
export CUDA_HOME=$home CUDA_PATH=$home CUDA_ROOT=$home CUDA_COMPUTE_CAP=90
export PATH=$home/bin:$PATH
export RUSTFLAGS='--cfg feature="dynamic-loading"'
echo "build-cuda: cargo build --release --features cuda --target $triple --target-dir $target_dir" >&2
start=$(date +%s)
cargo build --locked --release --features cuda --target "$triple" --target-dir "$target_dir"
bin=$target_dir/$triple/release/groundtruth
echo "build-cuda: built $bin in $(($(date +%s) - start)) s ($(du -m "$bin" | cut -f1) MB)" >&2

# 5. The binary must start without any CUDA library (they are dlopened when a GPU is used).
needed=$(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')
case " $needed" in
*" libcuda"* | *" libcublas"* | *" libcurand"* | *" libcudart"* | *" libnvrtc"*)
    die "$bin needs a CUDA library at start-up ($needed): the dynamic-loading build did not take"
    ;;
esac
echo "build-cuda: start-up dependencies: $needed" >&2

# 6. The bundle to carry: the binary and the toolkit libraries candle loads (never the stub;
#    the GPU machine's driver provides libcuda.so.1). Hard links where the filesystem allows.
bundle=$target_dir/bundle
rm -rf "$bundle"
mkdir -p "$bundle/lib"
cp "$bin" "$bundle/groundtruth"
for f in libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13 libnvrtc-builtins.so.13.0; do
    ln "$cu/lib/$f" "$bundle/lib/$f" 2>/dev/null || cp "$cu/lib/$f" "$bundle/lib/$f"
done
echo "build-cuda: bundle $bundle ($(du -shL "$bundle" | cut -f1)): groundtruth, lib/ (LD_LIBRARY_PATH on the GPU machine)" >&2
