#!/usr/bin/env node
// Builds the prebuilt binaries of the addon into prebuilds/<platform>-<arch>/ with prebuildify
// (N-API: one build per platform and architecture serves every Node >= 20). Run by `npm run
// prebuild` and by `prepack`, so a packed tarball always carries binaries of its own sources.
//   linux-x64     always (this machine)
//   linux-arm64   when the cross compiler aarch64-linux-gnu-gcc is installed (Debian package
//                 gcc-aarch64-linux-gnu); N-API needs no arm64 Node: the headers are the same
// The build runs in a staging copy under build/, so the package's own build/Release (loaded by the
// repository's tests, maybe right now) is never replaced or moved. Headers: npm_config_nodedir
// when set, else the running Node's own when installed (/usr/include/node of Debian's or
// NodeSource's package), else node-gyp downloads them.
// Not shipped (package.json "files" leaves scripts/ out).
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const prebuildify = require('prebuildify');
const log = (msg) => process.stderr.write(`prebuild: ${msg}\n`);

/** npm's own node-gyp (npm sets npm_config_node_gyp for scripts; else next to the npm in PATH). */
function nodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  const npm = which('npm');
  if (!npm) throw new Error('prebuild: npm is not in PATH (its node-gyp builds the addon)');
  return join(dirname(realpathSync(npm)), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
}

/** A directory whose include/node has this very Node's headers, or undefined. */
function localHeaders() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  for (const dir of ['/usr', join(dirname(process.execPath), '..'), '/usr/local']) {
    try {
      const h = readFileSync(join(dir, 'include/node/node_version.h'), 'utf8');
      const v = ['MAJOR', 'MINOR', 'PATCH'].map((k) => new RegExp(`define NODE_${k}_VERSION (\\d+)`).exec(h)?.[1]).join('.');
      if (`v${v}` === process.version && existsSync(join(dir, 'include/node/common.gypi'))) return dir;
    } catch {
      /* not there */
    }
  }
  return undefined;
}

/** The path of program `name` in PATH, or undefined. */
function which(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

const targets = [{ arch: arch(), env: {} }];
if (platform() === 'linux' && arch() === 'x64') {
  if (which('aarch64-linux-gnu-gcc')) {
    targets.push({ arch: 'arm64', env: { CC: 'aarch64-linux-gnu-gcc', CXX: 'aarch64-linux-gnu-g++', LINK: 'aarch64-linux-gnu-gcc' }, stripBin: 'aarch64-linux-gnu-strip' });
  } else {
    log('no aarch64-linux-gnu-gcc (Debian: gcc-aarch64-linux-gnu): linux-arm64 is not prebuilt, it builds from source on install');
  }
}

const headers = localHeaders();
mkdirSync(join(pkgDir, 'build'), { recursive: true });
const stage = mkdtempSync(join(pkgDir, 'build', 'prebuild-'));
try {
  cpSync(join(pkgDir, 'binding.gyp'), join(stage, 'binding.gyp'));
  cpSync(join(pkgDir, 'native'), join(stage, 'native'), { recursive: true });
  cpSync(join(pkgDir, 'package.json'), join(stage, 'package.json'));
  rmSync(join(pkgDir, 'prebuilds'), { recursive: true, force: true });
  for (const t of targets) {
    const saved = { ...process.env };
    Object.assign(process.env, t.env, headers ? { npm_config_nodedir: headers } : {});
    try {
      await new Promise((resolve, reject) =>
        prebuildify(
          {
            cwd: stage,
            out: pkgDir,
            napi: true,
            targets: [`node@${process.versions.node}`],
            arch: t.arch,
            strip: true,
            stripBin: t.stripBin ?? 'strip',
            tagLibc: true,
            nodeGyp: nodeGyp(),
            quiet: process.env.PREBUILD_VERBOSE !== "1",
          },
          (err) => (err ? reject(err) : resolve()),
        ),
      );
    } finally {
      process.env = saved;
    }
    rmSync(join(stage, 'build'), { recursive: true, force: true });
  }
} finally {
  rmSync(stage, { recursive: true, force: true });
}
for (const dir of readdirSync(join(pkgDir, 'prebuilds'))) {
  for (const f of readdirSync(join(pkgDir, 'prebuilds', dir))) {
    log(`prebuilds/${dir}/${f} (${statSync(join(pkgDir, 'prebuilds', dir, f)).size} bytes)`);
  }
}
