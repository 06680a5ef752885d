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
  --python_out=. --pyi_out=. \
  $(find protos -name '*.proto' | sort)

# gRPC stubs (*_pb2_grpc.py) only for the files that declare a service:
# for the others the plugin writes a module with nothing in it.
services=$(find protos -name '*.proto' | sort | xargs grep -lE '^[[:space:]]*service[[:space:]]+[A-Za-z_]' || true)
if [ -n "$services" ]; then
  "$PYTHON" -m grpc_tools.protoc -I . --grpc_python_out=. $services
fi

for dir in $(find protos -type d); do
  [ -f "$dir/__init__.py" ] || : > "$dir/__init__.py"
done
