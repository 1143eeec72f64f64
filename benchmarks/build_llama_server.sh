#!/bin/sh
# Build llama.cpp's own `llama-server` from the llama.cpp vendored in the INSTALLED llama-cpp-python's
# sdist, for benchmarks/concurrency.py (about 10 minutes on 2 cores). Nothing goes into the repository:
# sources, build tree and binary live in ~/.cache/streamchat/llama-server-<version>/.
#
#   sh benchmarks/build_llama_server.sh [path/to/python]     # default: .venv/bin/python
set -eu
PY=${1:-.venv/bin/python}
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")  # absolute (the build runs elsewhere), not resolved: a venv's python is a symlink
VERSION=$("$PY" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')
DEST=${STREAMCHAT_CACHE:-$HOME/.cache/streamchat}/llama-server-$VERSION
mkdir -p "$DEST"
cd "$DEST"
if [ ! -d "llama_cpp_python-$VERSION" ]; then
    "$PY" -m pip download --no-binary :all: --no-deps "llama-cpp-python==$VERSION" -d .
    tar xzf "llama_cpp_python-$VERSION.tar.gz"
fi
SRC="llama_cpp_python-$VERSION/vendor/llama.cpp"
# the wheel's own settings where they matter for speed: native CPU flags, OpenMP, Release
cmake -S "$SRC" -B build -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF
cmake --build build --target llama-server -j "$(nproc)"
cp build/bin/llama-server "$DEST/llama-server"
echo "built $DEST/llama-server"
