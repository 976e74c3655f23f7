#!/usr/bin/env bash
# Remakes docs/images/review.png: the example built and committed in a scratch git
# repository, the story ad's prompt edited and the hero given three takes, rebuilt on
# the emulator, reviewed, and the page shot by headless Chromium with no network.
#   bash docs/review-screenshot.sh        (needs assetbuild, git and chromium on PATH)
set -euo pipefail
docs=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ASSETBUILD_CACHE_DIR="$work/cache"
cp -r "$docs/../examples" "$work/site"
cd "$work/site"
printf '.assetbuild/\nassetbuild-review/\n' > .gitignore
git init -q -b main
assetbuild build -f see2ai.toml -q
git add -A && git -c user.name=docs -c user.email=docs@example.com commit -q -m "first build"
sed -i 's/steam rising from a ceramic cup on a windowsill/a glass of cold brew on a cafe terrace/' see2ai.toml
sed -i 's|^output = "web/hero.png"|output = "web/hero.png"\ntakes = 3|' see2ai.toml
assetbuild build -f see2ai.toml -q
assetbuild review -f see2ai.toml -o review
chromium --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars \
  --user-data-dir="$work/profile" "--host-resolver-rules=MAP * ~NOTFOUND" \
  --virtual-time-budget=10000 --window-size=1100,1900 \
  --screenshot="$docs/images/review.png" "file://$work/site/review/index.html" 2>/dev/null
echo "wrote $docs/images/review.png"
