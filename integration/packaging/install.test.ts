// The packages as a user gets them: `npm pack` of each (the addon's prebuilds are built by
// @vmhost/net's prepack), publint and arethetypeswrong on the tarballs, then a plain `npm install`
// of the tarballs into a new project outside the repository (no workspaces, no links; third-party
// dependencies from the registry), and there:
// - a consumer file and every README example type-check under `strict`, moduleResolution node16
//   and bundler, without the repository's `vmhost-source` condition;
// - `Rtnl.open` in a fresh namespace made by the installed @vmhost/lab;
// - each package README's examples run against the installed packages (the names they use
//   replaced as the README tests do);
// - `npx vmhost --help`, `npx vmhost guest build` (XDG_CACHE_HOME/vmhost/guest, holding a copy of
//   the repository's guest, which set-up builds with the same code) and `npx vmhost demo`;
// - without the prebuild (removed from the tarball): an install with scripts off fails to load
//   with the ENET_ADDON advice, `npm rebuild @vmhost/net` (the advice) builds it, and a plain
//   install builds it from source (node-gyp; npm_config_nodedir points at the installed headers,
//   as the README says for a machine that cannot download them).
// Prints the figures: tarball sizes, install times with and without the prebuild.
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkPackage, createPackageFromTarballData } from '@arethetypeswrong/core';
import { netns, Rtnl } from '@vmhost/net';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import { freshNetns, reserveNetns, TEST_PREFIX } from '../helpers/ns.js';
import { readmeExamples, withNames } from '../helpers/readme.js';
import { checkDisksExample, disksExampleEnv } from '../helpers/readme-disks.js';

const root = new URL('../../', import.meta.url).pathname;
const PACKAGES = ['net', 'kvm', 'firewall', 'lab', 'host'] as const;
const work = mkdtempSync(join(tmpdir(), 'vmhost-pack-')); // outside the repository
const app = join(work, 'app');
const tarballs = new Map<string, string>();

/**
 * The environment of a user's shell: nothing of the `npm test` that runs this file (its npm_*
 * variables, and the repository's node_modules/.bin in PATH, so that `npx vmhost` can only be the
 * installed one).
 */
const userEnv: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env)
    .filter(([k]) => !/^npm_/i.test(k) && !['INIT_CWD', 'NODE_OPTIONS', 'VMHOST_TEST'].includes(k))
    .map(([k, v]) => [k, k === 'PATH' ? (v ?? '').split(':').filter((d) => !d.includes('/node_modules/')).join(':') : v]),
);
/** Where the installed headers of this Node are (Debian's or NodeSource's nodejs: /usr). */
const NODEDIR = existsSync('/usr/include/node/common.gypi') ? '/usr' : undefined;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

async function run(file: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  const t0 = performance.now();
  const child = spawn(file, args, { cwd: opts.cwd, env: { ...userEnv, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const r = await netns.collect(child, { timeoutMs: opts.timeoutMs ?? 300_000 });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, ms: Math.round(performance.now() - t0) };
}

function ok(r: Run, what: string): Run {
  assert.equal(r.code, 0, `${what} failed:\n${r.stderr}\n${r.stdout}`);
  return r;
}

const npm = (args: string[], cwd: string, env?: NodeJS.ProcessEnv): Promise<Run> => run('npm', ['--no-audit', '--no-fund', ...args], { cwd, ...(env ? { env } : {}) });
const kib = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;

before(() => mkdirSync(join(work, 'tarballs')));
after(() => rmSync(work, { recursive: true, force: true }));

test('npm pack: each package has its LICENSE, README, dist and no tests; @vmhost/net has its addon sources and prebuilds', async (t) => {
  for (const pkg of PACKAGES) {
    const r = ok(await npm(['pack', '--json', '--pack-destination', join(work, 'tarballs')], join(root, 'packages', pkg)), `npm pack ${pkg}`);
    const [info] = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as Array<{ filename: string; size: number; unpackedSize: number; files: Array<{ path: string }> }>;
    assert.ok(info);
    const files = info.files.map((f) => f.path);
    tarballs.set(pkg, join(work, 'tarballs', info.filename));
    for (const f of ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts']) assert.ok(files.includes(f), `${pkg}: ${f} is packed`);
    for (const f of files) assert.doesNotMatch(f, /(^|\/)(test|integration|bench|fixtures)\/|\.test\.|tsbuildinfo|^scripts\//, `${pkg}: ${f} is not for users`);
    if (pkg === 'net') {
      for (const f of ['binding.gyp', 'native/vmhost_net.c', 'native/errno_names.h', 'prebuilds/linux-x64/@vmhost+net.glibc.node']) assert.ok(files.includes(f), `net: ${f}`);
      const arm = files.includes('prebuilds/linux-arm64/@vmhost+net.glibc.node');
      t.diagnostic(`net prebuilds: linux-x64${arm ? ', linux-arm64' : ' (no arm64 cross compiler here)'}`);
    }
    if (pkg === 'host') {
      for (const f of ['dist/cli.js', 'dist/vmhost.js', 'dist/vmhost.js.map']) assert.ok(files.includes(f), `host: ${f} (the CLI, the bin and its source map)`);
    }
    t.diagnostic(`${info.filename}: ${kib(info.size)} packed, ${kib(info.unpackedSize)} unpacked, ${files.length} files (${r.ms} ms)`);
  }
});

test('publint (strict) and arethetypeswrong (ESM-only profile: node10 and CJS resolution not asked for) pass on every tarball', async () => {
  for (const [pkg, tgz] of tarballs) {
    const data = readFileSync(tgz);
    const lint = await publint({ pack: { tarball: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) }, strict: true, level: 'suggestion' });
    assert.deepEqual(lint.messages.map((m) => `${m.type}: ${formatMessage(m, lint.pkg) ?? m.code}`), [], `publint ${pkg}`);
    const analysis = await checkPackage(createPackageFromTarballData(new Uint8Array(data)));
    assert.ok(analysis.types, `attw ${pkg}: the package has types`);
    const problems = analysis.problems.filter((p) => !('resolutionKind' in p) || !['node10', 'node16-cjs'].includes(p.resolutionKind));
    assert.deepEqual(problems, [], `attw ${pkg}`);
  }
});

test('plain npm install of the tarballs into a project outside the repository: the prebuild loads, nothing is built', async (t) => {
  mkdirSync(join(app, 'src'), { recursive: true });
  const version = (p: string): string => (JSON.parse(readFileSync(join(root, 'node_modules', p, 'package.json'), 'utf8')) as { version: string }).version;
  writeFileSync(join(app, 'package.json'), `${JSON.stringify({
    name: 'vmhost-consumer', private: true, type: 'module',
    dependencies: Object.fromEntries(PACKAGES.map((p) => [`@vmhost/${p}`, `file:${tarballs.get(p)!}`])),
    devDependencies: { typescript: version('typescript'), '@types/node': version('@types/node') },
  }, null, 2)}\n`);
  // No npm_config_nodedir: a build from source could not find headers here, so a passing install proves the prebuild.
  const r = ok(await npm(['install', '--prefer-offline'], app), 'npm install');
  t.diagnostic(`install with the prebuild: ${r.ms} ms`);
  const net = join(app, 'node_modules/@vmhost/net');
  for (const p of PACKAGES) assert.equal(lstatSync(join(app, 'node_modules/@vmhost', p)).isSymbolicLink(), false, `${p} is installed, not linked`);
  assert.ok(!existsSync(join(net, 'build')), 'nothing was built on install');
  assert.ok(existsSync(join(net, 'prebuilds/linux-x64/@vmhost+net.glibc.node')));
  assert.ok(existsSync(join(app, 'node_modules/yaml/package.json')), 'third-party dependencies from the registry');
});

/** Every README example, as src/readme/<pkg>-<name>.ts of the app (compiled with the consumer). */
const examples = PACKAGES.flatMap((pkg) => readmeExamples(pkg).map((e) => ({ pkg, ...e, file: `readme/${pkg}-${e.name}` })));

test('a consumer file and every README example type-check under strict with moduleResolution node16 and bundler', async () => {
  copyFileSync(join(root, 'integration/packaging/fixtures/consumer.ts'), join(app, 'src/consumer.ts'));
  mkdirSync(join(app, 'src/readme'));
  for (const e of examples) writeFileSync(join(app, 'src', `${e.file}.ts`), e.code);
  writeFileSync(join(app, 'src/rtnl.ts'), RTNL_SCRIPT);
  const base = { strict: true, target: 'ES2022', lib: ['ES2023'], types: ['node'], skipLibCheck: false, rootDir: 'src' };
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...base, module: 'node16', moduleResolution: 'node16', outDir: 'out' }, include: ['src'] }));
  writeFileSync(join(app, 'tsconfig.bundler.json'), JSON.stringify({ compilerOptions: { ...base, module: 'preserve', moduleResolution: 'bundler', noEmit: true }, include: ['src'] }));
  const tsc = join(app, 'node_modules/typescript/bin/tsc');
  ok(await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: app }), 'tsc node16');
  ok(await run(process.execPath, [tsc, '-p', 'tsconfig.bundler.json'], { cwd: app }), 'tsc bundler');
});

const RTNL_SCRIPT = `import { bareNamespace } from '@vmhost/lab';
import { Rtnl, netns } from '@vmhost/net';

const ns = await bareNamespace({ prefix: process.env.PREFIX ?? 'consumer-', tag: 'rtnl' });
try {
  using h = await Rtnl.open({ netns: ns.name });
  await h.links.add({ kind: 'veth', name: 'v0', peer: { name: 'v1' }, up: true });
  console.log((await h.links.list()).map((l) => l.name).join(' '));
} finally {
  await ns.remove();
}
console.log(await netns.exists(ns.name));
`;

test('Rtnl.open in a fresh namespace made by the installed @vmhost/lab', async () => {
  const prefix = `${TEST_PREFIX}pk-`;
  const r = ok(await run(process.execPath, ['out/rtnl.js'], { cwd: app, env: { PREFIX: prefix } }), 'rtnl.js');
  assert.deepEqual(r.stdout.trim().split('\n'), ['lo v1 v0', 'false']);
  assert.deepEqual((await netns.list()).filter((n) => n.startsWith(prefix)), []);
});

test('npx vmhost --help, guest build into its XDG_CACHE_HOME place, and the demo', async (t) => {
  const help = ok(await run('npx', ['--no-install', 'vmhost', '--help'], { cwd: app }), 'vmhost --help');
  assert.match(help.stdout, /^ {2}guest build +Build the tiny test guest/m);
  assert.match(help.stdout, /^vmhost: /);
  // --debug's stack trace, read through the bin's source map, names the installed packages' TypeScript
  const hostFile = join(work, 'debug-host.yaml');
  writeFileSync(hostFile, 'name: dbg\nuplink: eth0\nbridge: { name: br0, ipv4: 192.168.0.1/24 }\nvms: []\n');
  const missing = await run('npx', ['--no-install', 'vmhost', 'plan', hostFile, '--netns', 'vmhb-pkg-no-such-ns', '--debug'], { cwd: app, env: { NODE_OPTIONS: '--enable-source-maps' } });
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, new RegExp(`at openNetns \\(${join(app, 'node_modules/@vmhost/net/src/netns.ts')}:\\d+:\\d+\\)`), missing.stderr);
  // The repository's guest (built by the same code at set-up) copied to where the installed CLI
  // looks: guest build finds it current and builds nothing (a build from scratch is ~10-20 s).
  const cache = join(work, 'cache');
  cpSync(join(root, '.cache/guest'), join(cache, 'vmhost/guest'), { recursive: true });
  const guest = ok(await run('npx', ['--no-install', 'vmhost', 'guest', 'build'], { cwd: app, env: { XDG_CACHE_HOME: cache } }), 'vmhost guest build');
  assert.equal(guest.stdout.trim(), join(cache, 'vmhost/guest'));
  for (const f of ['vmlinuz', 'initrd.img', 'guest.json']) assert.ok(existsSync(join(cache, 'vmhost/guest', f)), f);
  assert.equal(guest.stderr, '', 'nothing was built');
  const demo = await run('npx', ['--no-install', 'vmhost', 'demo'], { cwd: app, env: { XDG_CACHE_HOME: cache }, timeoutMs: 600_000 });
  assert.equal(demo.code, 0, `vmhost demo failed:\n${demo.stdout}\n${demo.stderr}`);
  assert.doesNotMatch(demo.stdout, /^FAIL/m);
  assert.match(demo.stdout, /^PASS /m);
  assert.doesNotMatch(demo.stdout, /^guest: /m, 'the demo used the guest that guest build made');
  t.diagnostic(`vmhost demo: ${demo.ms} ms`);
  // The kvm README's examples boot the guest from ./.cache/guest.
  mkdirSync(join(app, '.cache'));
  symlinkSync(join(cache, 'vmhost/guest'), join(app, '.cache/guest'));
});

/** Runs one compiled README example in the app. */
async function runExample(t: TestContext, e: (typeof examples)[number], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const r = await run(process.execPath, [`out/${e.file}.js`], { cwd: app, env, timeoutMs: 300_000 });
  assert.equal(r.code, 0, `README example ${e.pkg} ${e.name} failed:\n${r.stderr}\n${r.stdout}`);
  t.diagnostic(`${e.pkg} README example ${e.name}: ${r.ms} ms`);
  return r;
}

test('every README example runs against the installed packages', async (t) => {
  assert.ok(examples.length >= 14, `found ${examples.length} examples`);
  for (const e of examples) {
    const code = readFileSync(join(app, 'out', `${e.file}.js`), 'utf8');
    if (e.pkg === 'net') {
      const ns = await reserveNetns(t, `pkr${e.name}`);
      const peer = await reserveNetns(t, `pkr${e.name}-peer`);
      writeFileSync(join(app, 'out', `${e.file}.js`), withNames(code, { netns: ns, peer }));
      await runExample(t, e);
      assert.equal(await netns.exists(ns), false);
    } else if (e.pkg === 'lab') {
      const prefix = `${TEST_PREFIX}pkr${e.name}-`;
      writeFileSync(join(app, 'out', `${e.file}.js`), withNames(code, { prefix }));
      await runExample(t, e);
      assert.deepEqual((await netns.list()).filter((n) => n.startsWith(prefix)), []);
    } else if (e.pkg === 'firewall') {
      await runExample(t, e, { NETNS: await freshNetns(t, 'pkfw') });
    } else if (e.pkg === 'kvm') {
      const dir = mkdtempSync(join(work, `kvm-${e.name}-`));
      const env: NodeJS.ProcessEnv = { RUN_DIR: dir };
      if (e.name === 'tap-fd') env.NETNS = await freshNetns(t, 'pkkvm');
      await runExample(t, e, env);
    } else if (e.name === 'disks') {
      // host: the disk chain example on a running test guest
      checkDisksExample((await runExample(t, e, await disksExampleEnv(t, work, 'pkdisk'))).stdout);
    } else {
      // host: the API example on a host without VMs, in a namespace whose uplink is eth0
      const ns = await freshNetns(t, 'pkhost');
      const h = await Rtnl.open({ netns: ns });
      try {
        await h.links.add({ kind: 'veth', name: 'eth0', up: true, peer: { name: 'eth1' } });
      } finally {
        h.close();
      }
      const file = join(work, 'host.yaml');
      writeFileSync(file, 'name: pack\nuplink: eth0\nbridge: { name: br0, ipv4: 192.168.0.1/24 }\ndhcp: { range: [192.168.0.100, 192.168.0.150] }\n');
      const r = await runExample(t, e, { HOST_FILE: file, NETNS: ns });
      assert.match(r.stdout, /^create bridge br0/m);
      // down (the example's last line) leaves nothing of the host under /run/vmhost: its default
      // state directory and, as it was the namespace's only host, the namespace's directory too
      assert.equal(existsSync(join('/run/vmhost', ns)), false, `/run/vmhost/${ns} left after down`);
    }
  }
});

test('without the prebuild: the load error says what to do, npm rebuild does it, and a plain install builds from source', async (t) => {
  // The net tarball without prebuilds/, packed again as it is (no prepack).
  const unpacked = join(work, 'noprebuild');
  mkdirSync(unpacked);
  ok(await run('tar', ['-xzf', tarballs.get('net')!, '-C', unpacked], { cwd: work }), 'tar');
  rmSync(join(unpacked, 'package/prebuilds'), { recursive: true });
  mkdirSync(join(unpacked, 'out'));
  const packed = ok(await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', join(unpacked, 'out'), join(unpacked, 'package')], unpacked), 'npm pack without prebuilds');
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string; size: number }>;
  const tgz = join(unpacked, 'out', info!.filename);
  t.diagnostic(`net tarball without prebuilds: ${kib(info!.size)}`);

  const app2 = join(work, 'app2');
  mkdirSync(app2);
  writeFileSync(join(app2, 'package.json'), JSON.stringify({ name: 'vmhost-consumer-src', private: true, type: 'module', dependencies: { '@vmhost/net': `file:${tgz}` } }));
  const ns = await freshNetns(t, 'pksrc');
  writeFileSync(join(app2, 'open.mjs'), `import { Rtnl } from '@vmhost/net';\nconst h = await Rtnl.open({ netns: ${JSON.stringify(ns)} });\nconsole.log((await h.links.list()).map((l) => l.name).join(' '));\nh.close();\n`);
  const nodedir = NODEDIR ? { npm_config_nodedir: NODEDIR } : {};

  // Scripts off: nothing built, nothing prebuilt. The error names what to install and how to rebuild.
  ok(await npm(['install', '--prefer-offline', '--ignore-scripts'], app2), 'npm install --ignore-scripts');
  const failed = await run(process.execPath, ['open.mjs'], { cwd: app2 });
  assert.notEqual(failed.code, 0);
  assert.match(failed.stderr, /ENET_ADDON/);
  for (const advice of ['C compiler', 'make', 'python3', 'headers', 'build-essential', 'npm_config_nodedir', 'npm rebuild @vmhost/net']) {
    assert.ok(failed.stderr.includes(advice), `the error mentions ${advice}:\n${failed.stderr}`);
  }
  assert.doesNotMatch(failed.stderr, /npm run setup|packages\/net/, 'no advice in terms of the repository');
  // Following the advice works.
  ok(await npm(['rebuild', '@vmhost/net'], app2, nodedir), 'npm rebuild @vmhost/net');
  assert.equal(ok(await run(process.execPath, ['open.mjs'], { cwd: app2 }), 'open.mjs after rebuild').stdout.trim(), 'lo');

  // A plain install from scratch builds the addon from source (node-gyp-build's install script).
  rmSync(join(app2, 'node_modules'), { recursive: true });
  rmSync(join(app2, 'package-lock.json'));
  const r = ok(await npm(['install', '--prefer-offline'], app2, nodedir), 'npm install (build from source)');
  t.diagnostic(`install without the prebuild (build from source): ${r.ms} ms`);
  assert.ok(existsSync(join(app2, 'node_modules/@vmhost/net/build/Release/vmhost_net.node')), 'built from source on install');
  assert.ok(!existsSync(join(app2, 'node_modules/@vmhost/net/prebuilds')));
  assert.equal(ok(await run(process.execPath, ['open.mjs'], { cwd: app2 }), 'open.mjs').stdout.trim(), 'lo');
});
