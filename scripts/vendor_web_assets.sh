#!/usr/bin/env bash
# Copy the pinned front-end assets (web/package-lock.json) into search_api/static/vendor/.
# The copied files are committed, so a fresh clone needs neither npm nor the internet to serve the UI;
# run this after changing a version in web/package.json (`make web-assets`).
set -euo pipefail
cd "$(dirname "$0")/../web"
# --ignore-scripts: no install script runs (swagger-ui-dist pulls @scarf/scarf, whose script phones home).
SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund --silent
dest=../search_api/static/vendor
rm -rf "$dest" && mkdir -p "$dest/htmx" "$dest/leaflet/images" "$dest/swagger-ui"
cp node_modules/htmx.org/dist/htmx.min.js node_modules/htmx.org/LICENSE "$dest/htmx/"
cp node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css node_modules/leaflet/LICENSE "$dest/leaflet/"
cp node_modules/leaflet/dist/images/*.png "$dest/leaflet/images/"
# /docs (search_api/web/docs.py): Swagger UI's bundle and style only, served from our own origin.
cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css \
   node_modules/swagger-ui-dist/LICENSE "$dest/swagger-ui/"
for pkg in htmx.org leaflet swagger-ui-dist; do
  node -e "const p=require('./node_modules/$pkg/package.json');console.log(p.name+' '+p.version)"
done > "$dest/VERSIONS.txt"
echo "vendored: $(tr '\n' ' ' < "$dest/VERSIONS.txt")"
