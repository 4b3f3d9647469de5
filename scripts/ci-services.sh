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


# The OCI image tests (tests/packaging/test_image*.py, test_registry_login.py): Debian's
# docker-registry (the CNCF distribution server, started on 127.0.0.1 by the tests), skopeo (a
# second client reading the pushed image back), htpasswd (apache2-utils: the bcrypt file of the
# registry's Basic auth) and umoci (unpacks an image layout into the root filesystem whose
# entrypoint the Cloud Run and Azure image proofs run, chrooted: those tests need root).
missing=()
for tool in docker-registry:docker-registry skopeo:skopeo htpasswd:apache2-utils umoci:umoci; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
docker-registry --version
