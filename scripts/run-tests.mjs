#!/usr/bin/env node
// Runs vmhost's tests with node's test runner: unit tests (test/) and, as root, the
// integration tests (integration/), which work only inside network namespaces they create.
// Usage: node scripts/run-tests.mjs [test|integration|FILE...]
// Ends with the runner's summary and then one plain line: "N passed, N failed, N skipped".
import { spawn } from 'node:child_process';
import { readdirSync, statSync, readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir, availableParallelism } from 'node:os';

const root = resolve(new URL('..', import.meta.url).pathname);
const args = process.argv.slice(2);
const targets = args.length ? args : ['test', 'integration'];

function collect(path, out) {
  let st;
  try {
    st = statSync(path);
  } catch {
    return out; // a missing directory holds no tests
  }
  if (st.isDirectory()) {
    for (const name of readdirSync(path).sort()) {
      if (name === 'node_modules' || name === 'fixtures' || name === 'helpers') continue;
      collect(join(path, name), out);
    }
  } else if (/\.test\.ts$/.test(path)) {
    out.push(path);
  }
  return out;
}

const files = [];
for (const t of targets) collect(resolve(root, t), files);
const wantsIntegration = files.some((f) => f.startsWith(join(root, 'integration')));
if (wantsIntegration && process.getuid?.() !== 0) {
  console.error('run-tests: integration tests need root (they create network namespaces)');
  process.exit(2);
}

const nodeFlags = ['--conditions=vmhost-source', '--import', 'tsx'];
if (wantsIntegration) {
  // Remove what a crashed earlier run left behind (namespaces with the test prefix and the
  // processes inside them), before anything starts.
  const sweep = spawn(process.execPath, [...nodeFlags, join(root, 'integration/helpers/sweep.ts')], {
    cwd: root, stdio: 'inherit',
  });
  const code = await new Promise((r) => sweep.on('exit', (c) => r(c ?? 1)));
  if (code !== 0) process.exit(code);
}

const dir = mkdtempSync(join(tmpdir(), 'vmhost-tests-'));
const summaryFile = join(dir, 'summary.json');
const child = spawn(process.execPath, [
  ...nodeFlags,
  '--test',
  `--test-concurrency=${Math.max(1, availableParallelism())}`,
  '--test-timeout=1200000', // per test file (node 20 applies it to each file's run): the real Debian guest needs minutes under load
  '--test-reporter=spec', '--test-reporter-destination=stdout',
  `--test-reporter=${join(root, 'scripts/summary-reporter.mjs')}`, `--test-reporter-destination=${summaryFile}`,
  ...files,
], { cwd: root, stdio: 'inherit', env: { ...process.env, VMHOST_TEST: '1' } });
const code = await new Promise((r) => child.on('exit', (c, sig) => r(c ?? (sig ? 1 : 0))));
let counts = {};
try { counts = JSON.parse(readFileSync(summaryFile, 'utf8')); } catch { /* runner died early */ }
rmSync(dir, { recursive: true, force: true });
const failed = (counts.fail ?? 0) + (counts.cancelled ?? 0);
const passed = counts.pass ?? 0;
console.log(`${passed} passed, ${failed} failed, ${counts.skipped ?? 0} skipped`);
process.exit(code !== 0 ? code : failed > 0 || passed === 0 ? 1 : 0);
