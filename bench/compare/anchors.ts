// The anchors of bench:compare that are programs of their own: vishvananda/netlink (a small Go
// program built from Debian's golang-go and golang-github-vishvananda-netlink-dev), pyroute2
// (Debian's python3-pyroute2) and the kernel's floor (a small C program sending ip's requests
// in batches, built with the C compiler the native addon needs). Each runs inside the measured namespace and reports its own
// in-process time (start-up and imports excluded), so only the netlink work is compared.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { netns } from '@vmhost/net';

const HERE = import.meta.dirname;
const ROOT = join(HERE, '..', '..');
const GOPATH = '/usr/share/gocode';

/** Debian packages the anchors need. */
export const ANCHOR_PACKAGES = ['golang-go', 'golang-github-vishvananda-netlink-dev', 'python3-pyroute2'];

/** Which anchor packages are missing (dpkg-query). */
export function missingPackages(): string[] {
  return ANCHOR_PACKAGES.filter((p) => {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' });
    return !r.stdout.includes('install ok installed');
  });
}

/**
 * The program `name` in .cache/bench, built from `src` by `build(bin)` (a spawnSync result) when
 * it is missing or older than `src`; returns its path.
 */
function cachedBuild(src: string, name: string, what: string, build: (bin: string, dir: string) => SpawnSyncReturns<string>): string {
  const dir = join(ROOT, '.cache', 'bench');
  const bin = join(dir, name);
  if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(src).mtimeMs) return bin;
  mkdirSync(dir, { recursive: true });
  const r = build(bin, dir);
  if (r.status !== 0) throw new Error(`building ${what} failed: ${r.stderr || r.error?.message}`);
  return bin;
}

/** Builds the Go anchor into .cache/bench (rebuilt when main.go is newer); returns its path. */
export function goBinary(): string {
  return cachedBuild(join(HERE, 'go', 'main.go'), 'netlinkbench', 'the Go anchor', (bin, dir) =>
    spawnSync('go', ['build', '-o', bin, '.'], {
      cwd: join(HERE, 'go'),
      encoding: 'utf8',
      env: { ...process.env, GOPATH, GO111MODULE: 'off', GOCACHE: join(dir, 'go-cache'), GOFLAGS: '' },
    }),
  );
}

/** Builds the C floor anchor (c/floor.c) into .cache/bench (rebuilt when the source is newer); returns its path. */
export function floorBinary(): string {
  const src = join(HERE, 'c', 'floor.c');
  return cachedBuild(src, 'netlinkfloor', 'the C floor anchor', (bin) => spawnSync('cc', ['-O2', '-Wall', '-o', bin, src], { encoding: 'utf8' }));
}

/** The pyroute2 anchor script. */
export const PY_SCRIPT = join(HERE, 'py', 'pyroute2_bench.py');

/** Debian's Python (python3-pyroute2 is installed for it; a python3 earlier on PATH may not have it). */
export const PYTHON = '/usr/bin/python3';

/** Runs an anchor in `ns`; returns its reported `{ ms, count }`. */
export async function runAnchor(ns: string, cmd: string, args: string[]): Promise<{ ms: number; count: number }> {
  const r = await netns.run(ns, cmd, args, { timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.slice(0, 400)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { ms: number; count: number };
}
