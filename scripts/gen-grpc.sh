#!/usr/bin/env bash
# Generate src/grpc/gen/ (TypeScript, @bufbuild/protobuf v2) from proto/a2a.proto, the A2A v1.0 service
# definition, and the google/api and google/rpc files it and the gRPC error details use. The output is
# committed; run this again only when the proto changes. Needs protoc (Debian: protobuf-compiler) and
# `npm install` (for protoc-gen-es and google-proto-files).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "gen-grpc: protoc not found (apt-get install protobuf-compiler)" >&2; exit 2; }
google=node_modules/google-proto-files
out=src/grpc/gen
rm -rf "$out"
mkdir -p "$out"
protoc -I proto -I "$google" \
  --plugin=protoc-gen-es=node_modules/.bin/protoc-gen-es \
  --es_out="$out" --es_opt=target=ts,import_extension=js \
  a2a.proto google/api/annotations.proto google/api/http.proto google/api/client.proto \
  google/api/field_behavior.proto google/api/launch_stage.proto google/rpc/error_details.proto google/rpc/status.proto
echo "gen-grpc: wrote $(find "$out" -name '*.ts' | wc -l) files to $out"
