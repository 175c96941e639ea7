#!/usr/bin/env bash
# Copy the pinned front-end assets (web/package-lock.json) into search_api/static/vendor/.
# The copied files are committed, so a fresh clone needs neither npm nor the internet to serve the UI;
# run this after changing a version in web/package.json (`make web-assets`).
set -euo pipefail
cd "$(dirname "$0")/../web"
npm ci --no-audit --no-fund --silent
dest=../search_api/static/vendor
rm -rf "$dest" && mkdir -p "$dest/htmx" "$dest/leaflet/images"
cp node_modules/htmx.org/dist/htmx.min.js node_modules/htmx.org/LICENSE "$dest/htmx/"
cp node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css node_modules/leaflet/LICENSE "$dest/leaflet/"
cp node_modules/leaflet/dist/images/*.png "$dest/leaflet/images/"
for pkg in htmx.org leaflet; do
  node -e "const p=require('./node_modules/$pkg/package.json');console.log(p.name+' '+p.version)"
done > "$dest/VERSIONS.txt"
echo "vendored: $(tr '\n' ' ' < "$dest/VERSIONS.txt")"
