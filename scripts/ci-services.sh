#!/usr/bin/env bash
# Install the local stand-ins for cloud services that the deploy tests start themselves:
# Azurite (Blob Storage, from npm). moto (AWS) and gcp-storage-emulator (Cloud Storage) come
# with the dev extra. Safe to re-run: it installs only what is missing.
# The tests look for Azurite at $BERTLESS_AZURITE, then in the cache below, then on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

azurite_prefix="${BERTLESS_AZURITE_PREFIX:-$HOME/.cache/bertless/azurite}"
if [ ! -x "$azurite_prefix/node_modules/.bin/azurite-blob" ]; then
    npm install --no-audit --no-fund --loglevel=error --prefix "$azurite_prefix" azurite@3
fi
"$azurite_prefix/node_modules/.bin/azurite-blob" --version

