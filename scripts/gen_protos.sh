#!/usr/bin/env bash
# Regenerate the Python modules (with .pyi stubs) next to every .proto file.
# Run from anywhere; the output is committed and CI checks it is current.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}

find protos -name '*_pb2*.py' -delete
find protos -name '*_pb2*.pyi' -delete

# Import paths follow file paths (protos/bank/v1/bank.proto is imported as
# protos.bank.v1.bank_pb2), so generated modules need no sys.path edits.
"$PYTHON" -m grpc_tools.protoc -I . \
  --python_out=. --pyi_out=. --grpc_python_out=. \
  $(find protos -name '*.proto' | sort)

for dir in $(find protos -type d); do
  [ -f "$dir/__init__.py" ] || : > "$dir/__init__.py"
done
