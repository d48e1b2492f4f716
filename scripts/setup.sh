#!/usr/bin/env bash
# One set-up for the demo and the tests, idempotent and quick when everything is present:
#   1. Debian packages (scripts/setup-system.sh)
#   2. npm ci, only when package-lock.json changed since the last install
#   3. the native addon of @vmhost/net (node-gyp), only when its sources changed
#   4. the TypeScript build (tsc -b is incremental), and the `vmhost` bin bundled from it when older
#   5. the tiny test guest (`vmhost guest build --dir .cache/guest`: the code path users have)
#   6. the real Debian 12 guest of the integration tests (cached under .cache/debian-guest; a
#      fresh build takes ~1.5-3 minutes, a current cache ~5 ms); skipped with --without-debian-guest
#      (the demo's set-up: it runs the fast test guests only)
# --bench also installs the Debian packages of bench:compare's anchors (Go netlink, pyroute2).
set -euo pipefail
debian_guest=1
system_args=()
for arg in "$@"; do
  case "$arg" in
    --without-debian-guest) debian_guest=0 ;;
    --bench) system_args+=(--bench) ;;
    *) echo "setup: unknown option $arg" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
log() { echo "setup: $*" >&2; }

bash scripts/setup-system.sh "${system_args[@]}"

# Build native code against the installed Node headers (no download: the machine reaches only npm).
# npm ci runs @vmhost/net's install script (node-gyp-build), which builds the addon from source when
# no prebuild is there, as in a fresh clone; node-gyp reads npm_config_nodedir.
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/common.gypi ]; then export npm_config_nodedir=/usr; fi

lock_hash=$(sha256sum package-lock.json package.json packages/*/package.json | sha256sum | cut -c1-16)
stamp=node_modules/.vmhost-install-stamp
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$lock_hash" > "$stamp"
fi

if [ -f packages/net/binding.gyp ]; then
  src_hash=$(cat packages/net/binding.gyp packages/net/native/* | sha256sum | cut -c1-16)
  nstamp=packages/net/build/.vmhost-src-stamp
  if [ ! -f packages/net/build/Release/vmhost_net.node ] || [ ! -f "$nstamp" ] || [ "$(cat "$nstamp")" != "$src_hash" ]; then
    log "building the native addon of @vmhost/net"
    gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
    (cd packages/net && node "$gyp" rebuild --loglevel=warn >&2)
    echo "$src_hash" > "$nstamp"
  fi
fi

npx --no-install tsc -b
node scripts/bundle-cli.mjs --check 2>/dev/null || node scripts/bundle-cli.mjs # the `vmhost` command as one file (the bin)
# npm links the vmhost bin at install time, before dist/vmhost.js exists: make it executable now
# (and point an old link, made when the bin was dist/cli.js, at it).
chmod +x packages/host/dist/vmhost.js packages/host/dist/cli.js
[ "$(readlink node_modules/.bin/vmhost 2>/dev/null)" = ../@vmhost/host/dist/vmhost.js ] || ln -sfn ../@vmhost/host/dist/vmhost.js node_modules/.bin/vmhost

node packages/host/dist/vmhost.js guest build --dir .cache/guest >/dev/null
if [ "$debian_guest" = 1 ] && [ -x scripts/build-debian-guest.sh ]; then
  scripts/build-debian-guest.sh
fi
