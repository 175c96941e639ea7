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
# Système de design de l'État (issue 17, point 1): the compiled style and scripts, the Marianne fonts (woff2:
# every browser we support reads it) and only the component icons dsfr.min.css refers to, plus its licence.
dsfr=node_modules/@gouvfr/dsfr
mkdir -p "$dest/dsfr/fonts"
cp "$dsfr/dist/dsfr.min.css" "$dsfr/dist/dsfr.module.min.js" "$dsfr/dist/dsfr.nomodule.min.js" "$dsfr/LICENSE.md" "$dest/dsfr/"
cp "$dsfr"/dist/fonts/Marianne-*.woff2 "$dest/dsfr/fonts/"
grep -o 'url(icons/[^)]*)' "$dsfr/dist/dsfr.min.css" | sed 's/^url(//; s/)$//' | sort -u | while read -r icon; do
  mkdir -p "$dest/dsfr/$(dirname "$icon")" && cp "$dsfr/dist/$icon" "$dest/dsfr/$icon"
done
# axe-core runs in the browser tests only (tests/e2e), injected as a file under the pages' real CSP: it is
# vendored next to them, never served by the app.
mkdir -p ../tests/e2e/vendor/axe-core
cp node_modules/axe-core/axe.min.js node_modules/axe-core/LICENSE ../tests/e2e/vendor/axe-core/
for pkg in htmx.org leaflet swagger-ui-dist @gouvfr/dsfr axe-core; do
  node -e "const p=require('./node_modules/$pkg/package.json');console.log(p.name+' '+p.version)"
done > "$dest/VERSIONS.txt"
echo "vendored: $(tr '\n' ' ' < "$dest/VERSIONS.txt")"
