#!/usr/bin/env bash
# Fetch pinned npm packages' files into a folder: one subfolder per package, holding only the
# listed paths (and the package.json, which records the version fetched).
#   fetch-npm-files.sh DEST "name@version:path path ..." ...
# A package already at its pinned version is left as it is; anything else is fetched again.
set -euo pipefail
DEST="$1"
shift
if ! command -v npm >/dev/null 2>&1; then
    echo "npm is needed to fetch pinned npm packages: install it (Debian: apt-get install npm)" >&2
    exit 1
fi
mkdir -p "$DEST"
for entry in "$@"; do
    spec="${entry%%:*}"
    name="${spec%@*}"
    version="${spec#*@}"
    read -r -a paths <<<"${entry#*:}"
    target="$DEST/$name"
    if [ -f "$target/package.json" ] && grep -q "\"version\": \"$version\"" "$target/package.json"; then
        continue
    fi
    work="$(mktemp -d)"
    echo "fetching $spec"
    (cd "$work" && npm pack --silent "$spec" >/dev/null)
    mkdir -p "$work/unpacked"
    tar -xzf "$work"/*.tgz -C "$work/unpacked" --strip-components=1 \
        "${paths[@]/#/package/}"
    rm -rf "$target"
    mv "$work/unpacked" "$target"
    rm -rf "$work"
done
