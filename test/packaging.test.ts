// What the registry and a package page need from each package, checked without packing (the
// packing itself, publint and arethetypeswrong run in integration/packaging/install.test.ts):
// metadata, the LICENSE file, what ships, READMEs that start with Install and Requirements and
// whose links work on a package page, and the addon's load error in the consumer's terms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addonLoadMessage } from '../packages/net/src/sys/native.js';

const root = join(import.meta.dirname, '..');
const workspaces = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces;

interface Manifest {
  name: string;
  description?: string;
  keywords?: string[];
  license?: string;
  os?: string[];
  engines?: { node?: string };
  files?: string[];
  exports?: Record<string, unknown>;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  repository?: unknown;
  homepage?: unknown;
}

for (const ws of workspaces) {
  const dir = join(root, ws);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;

  test(`${pkg.name}: registry metadata, LICENSE, what ships`, () => {
    assert.ok((pkg.description ?? '').length > 40, 'a description');
    assert.ok((pkg.keywords ?? []).length >= 3, 'keywords');
    const license = readFileSync(join(dir, 'LICENSE'), 'utf8');
    assert.match(license, /^MIT License\n/);
    if (pkg.name === '@vmhost/kvm') {
      // the generated QMP types carry QEMU's documentation text (GPL-2.0-or-later): said in both places
      assert.equal(pkg.license, 'MIT AND GPL-2.0-or-later');
      assert.match(license, /GPL-2\.0-or-later[\s\S]*src\/qmp\/generated\.ts/);
    } else {
      assert.equal(pkg.license, 'MIT');
    }
    assert.deepEqual(pkg.os, ['linux']);
    assert.equal(pkg.engines?.node, '>=20.4', 'Symbol.dispose/asyncDispose exist from Node 20.4');
    // No invented URLs: the project has no public repository address.
    assert.equal(pkg.repository, undefined);
    assert.equal(pkg.homepage, undefined);
    const files = pkg.files ?? [];
    assert.ok(files.includes('dist') && files.includes('!dist/.tsbuildinfo'), 'dist without the build info');
    assert.ok(files.includes('src'), 'src ships: the source maps and declaration maps point into it');
    for (const f of files) assert.doesNotMatch(f, /test|integration|bench|scripts/);
    const dot = pkg.exports?.['.'] as Record<string, string>;
    assert.deepEqual(Object.keys(dot), ['types', 'vmhost-source', 'default'], 'types first; default without any custom condition');
    assert.equal(dot.default, './dist/index.js');
  });

  test(`${pkg.name}: the README starts with Install and Requirements, and has no links that break on a package page`, () => {
    const md = readFileSync(join(dir, 'README.md'), 'utf8');
    const headings = [...md.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
    assert.deepEqual(headings.slice(0, 2), ['Install', 'Requirements']);
    assert.match(md, new RegExp(`npm install (--save-dev )?${pkg.name.replace('/', '\\/')}`));
    const relative = [...md.matchAll(/\]\(([^)]+)\)/g)].map((m) => m[1]!).filter((href) => !/^(https?:|#|mailto:)/.test(href));
    assert.deepEqual(relative, [], 'relative links point into the repository, not into the package');
  });
}

test('@vmhost/net ships its addon: sources, prebuilds, node-gyp-build as the install step', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'packages/net/package.json'), 'utf8')) as Manifest;
  for (const f of ['binding.gyp', 'native', 'prebuilds']) assert.ok(pkg.files?.includes(f), f);
  assert.equal(pkg.scripts?.install, 'node-gyp-build');
  assert.ok(pkg.dependencies?.['node-gyp-build'], 'node-gyp-build is a runtime dependency (the loader)');
  assert.match(pkg.scripts?.prepack ?? '', /prebuild/, 'a packed tarball carries prebuilds of its own sources');
  assert.ok(existsSync(join(root, 'packages/net/binding.gyp')));
});

test('the addon load error says what to install and how to rebuild, in the terms of whoever installed the package', () => {
  const msg = addonLoadMessage(new Error('No native build was found for platform=linux arch=riscv64 runtime=node abi=115 uv=1 libc=glibc node=20.20.2\n    loaded from: /app/node_modules/@vmhost/net\n'));
  assert.match(msg, /^@vmhost\/net: its native addon cannot be loaded on linux-\w+ \(No native build was found for platform=linux arch=riscv64 [^\n]*\)\./);
  for (const advice of ['C compiler', 'make', 'python3', 'Node.js headers', 'apt-get install build-essential python3', 'npm_config_nodedir', 'npm rebuild @vmhost/net']) {
    assert.ok(msg.includes(advice), advice);
  }
  assert.doesNotMatch(msg, /npm run setup|packages\/net|node-gyp rebuild/, 'nothing that only makes sense inside the repository');
});
