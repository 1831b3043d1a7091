#!/usr/bin/env bash
# Build llama-cpp-python from source into a wheelhouse cache, once, with portable CPU flags.
#
# Why: the default build uses -march=native; on Sapphire Rapids Xeons that enables AMX and the
# first completion segfaults in ggml_backend_amx_mul_mat (ggml-org/llama.cpp#20824). pip's own
# wheel cache is keyed on the sdist, not on CMAKE_ARGS, so we build with --no-cache-dir into our
# own wheelhouse, keyed by version + flags, and install from there with --find-links.
#
# Usage: infra/build-llama.sh PYTHON   (prints the wheelhouse path on the last line)
set -euo pipefail
PY=${1:-python3}
VERSION=${LVLUP_LLAMA_CPP_VERSION:-0.3.36}
FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
KEY=$(printf '%s %s' "$VERSION" "$FLAGS" | sha256sum | cut -c1-12)
CACHE=${LVLUP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lvlup}
HOUSE="$CACHE/wheelhouse/llama-$KEY"
mkdir -p "$HOUSE"
if ls "$HOUSE"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1; then
  echo "llama-cpp-python $VERSION: cached wheel in $HOUSE" >&2
else
  command -v cmake >/dev/null || { echo "error: cmake is missing (apt-get install cmake)" >&2; exit 2; }
  command -v g++ >/dev/null || { echo "error: a C++ compiler is missing (apt-get install g++)" >&2; exit 2; }
  echo "llama-cpp-python $VERSION: building from source with portable AVX2 flags (~8 min on 2 cores)…" >&2
  start=$(date +%s)
  CMAKE_ARGS="$FLAGS" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    "$PY" -m pip wheel --no-cache-dir --no-deps -w "$HOUSE" "llama-cpp-python==$VERSION" >&2
  echo "llama-cpp-python built in $(( $(date +%s) - start )) s" >&2
fi
echo "$HOUSE"
