#!/usr/bin/env node
// The `vmhost` command as one file: packages/host/dist/vmhost.js, an esbuild bundle of the built
// dist/cli.js and everything it imports (@vmhost/net, kvm, firewall, host, and their
// dependencies), which @vmhost/host's `bin` points to. Node loads one file instead of ~210
// modules, which takes ~30 ms where the module graph takes ~90 (docs/host-scale.md): most of the
// fixed cost of every command. The library (`import ... from '@vmhost/host'`) stays the module
// graph of dist/; code that reads or starts the package's own files finds them from the package
// root (packages/host/src/package-root.ts, @vmhost/net's sys/native.ts), so it works from either.
//
// Run by `npm run build` (after tsc -b) and by scripts/setup.sh; `--check` exits 1 when the
// bundle or its source map is missing or older than a module of dist/ (a build without it).
import { readdirSync, statSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const ROOT = join(import.meta.dirname, '..');
const OUT = join(ROOT, 'packages', 'host', 'dist', 'vmhost.js');

/** The newest mtime of the .js files under `dir`. */
function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p));
    else if (e.name.endsWith('.js') && p !== OUT) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

if (process.argv.includes('--check')) {
  const dists = ['net', 'kvm', 'firewall', 'lab', 'host'].map((p) => newest(join(ROOT, 'packages', p, 'dist')));
  let out = 0;
  try {
    out = Math.min(statSync(OUT).mtimeMs, statSync(`${OUT}.map`).mtimeMs);
  } catch {
    /* none (or a bundle without its map) */
  }
  if (out < Math.max(...dists)) {
    console.error(`bundle-cli: ${OUT} (or its source map) is missing or older than the built modules: npm run build`);
    process.exit(1);
  }
  process.exit(0);
}

await build({
  entryPoints: [join(ROOT, 'packages', 'host', 'dist', 'cli.js')],
  outfile: OUT,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // the CommonJS dependencies bundled in (yaml, node-gyp-build) call require(): give them Node's
  banner: { js: "import { createRequire as __vmhostCreateRequire } from 'node:module';\nconst require = __vmhostCreateRequire(import.meta.url);" },
  legalComments: 'inline',
  // dist/vmhost.js.map, through tsc's maps to the TypeScript sources the packages ship (src/, not
  // copied into the map): read only with NODE_OPTIONS=--enable-source-maps
  sourcemap: 'linked',
  sourcesContent: false,
  logLevel: 'warning',
});
chmodSync(OUT, 0o755);
