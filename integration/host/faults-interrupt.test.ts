// The fault suite, part 2: `vmhost apply` interrupted by SIGINT (Ctrl-C) and SIGTERM at chosen
// points (the step under way finishes, what was done is undone, exit 130) and down interrupted
// (it stops between steps, exit 130, down again finishes); kills while "start VM web" runs with a
// real guest (TCG): before QEMU is spawned, as soon as QEMU shows in /proc, after it came up. After
// each: `status` agrees with the oracle, no QEMU is started twice, and down leaves the namespace
// exactly as before (integration/helpers/fault-env.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { netns } from '@vmhost/net';
import { Lab } from '@vmhost/lab';
import { apply, down, parseHostFile, plan, stateDirFor } from '@vmhost/host';
import { startVmhost, vmhost } from '../helpers/cli.js';
import { assertRecovers, assertStatusTruthful, guestsReady, hostText, Pool, qemusOf } from '../helpers/fault-env.js';
import { hostSnapshot } from '../helpers/host-snapshot.js';

const ROOT = join(import.meta.dirname, '..', '..');
const WORKERS = 3;

test('Ctrl-C (SIGINT) and SIGTERM during apply: the step finishes, what was done is undone, exit 130; during down: it stops, exit 130, down again finishes', { concurrency: WORKERS }, async (t) => {
  const pool = new Pool((name) => hostText(name, false, ['web']));
  t.after(() => pool.close());
  await pool.fill(WORKERS);
  const e0 = await pool.acquire();
  const steps = (await plan(e0.host, e0.opts)).steps.length;
  pool.release(e0);
  const cases = [`SIGINT@apply:intended:0`, `SIGINT@apply:changed:${steps >> 1}`, `SIGTERM@apply:recorded:${steps - 2}`, `SIGINT@apply:recorded:${steps - 1}`];
  await Promise.all([
    ...cases.map((fault) =>
      t.test(fault, () =>
        pool.with(async (e) => {
          const r = await vmhost([...e.g, 'apply', e.file], { VMHOST_TEST_FAULT: fault });
          assert.equal(r.code, 130, r.stderr);
          assert.match(r.stderr, /apply interrupted/);
          assert.match(r.stderr, /the host is as it was before this apply/);
          assert.deepEqual(await hostSnapshot(e.ns), e.baseline, 'undone: the namespace as before');
          await assertStatusTruthful(e, 'after the interrupt');
          await assertRecovers(e, fault);
        }),
      ),
    ),
    t.test(`SIGINT@down:recorded:${steps >> 1}`, () =>
      pool.with(async (e) => {
        await apply(e.host, e.opts);
        const r = await vmhost([...e.g, 'down', e.file], { VMHOST_TEST_FAULT: `SIGINT@down:recorded:${steps >> 1}` });
        assert.equal(r.code, 130, r.stderr);
        assert.match(r.stderr, new RegExp(`${(steps >> 1) + 1} steps done; the state file records the rest`));
        await assertStatusTruthful(e, 'after the interrupted down');
        const again = await vmhost([...e.g, 'down', e.file]);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, new RegExp(`Down complete: ${steps - (steps >> 1) - 1} steps`));
        assert.deepEqual(await hostSnapshot(e.ns), e.baseline);
      }),
    ),
  ]);
});

test('kill -9 while "start VM web" runs (a real guest, TCG): the VM is found, never started twice, and down stops it', { concurrency: 2 }, async (t) => {
  const pool = new Pool((name) => hostText(name, true, ['web']));
  t.after(() => pool.close());
  await pool.fill(2);
  const e0 = await pool.acquire();
  const vmStep = (await plan(e0.host, e0.opts)).steps.findIndex((s) => s.id === 'vm:web');
  pool.release(e0);
  assert.ok(vmStep > 0);
  const viaHook = (phase: 'intended' | 'changed') =>
    t.test(`SIGKILL@apply:${phase}:${vmStep} (${phase === 'intended' ? 'before QEMU is spawned' : 'QEMU up, not yet confirmed'})`, () =>
      pool.with(async (e) => {
        const r = await vmhost([...e.g, 'apply', e.file], { VMHOST_TEST_FAULT: `SIGKILL@apply:${phase}:${vmStep}` });
        assert.equal(r.signal, 'SIGKILL', r.stderr);
        assert.equal(qemusOf(e.opts.stateDir).length, phase === 'intended' ? 0 : 1);
        await assertStatusTruthful(e, `killed at ${phase}`);
        await assertRecovers(e, `killed at ${phase} of start VM web`);
      }),
    );
  await Promise.all([
    viaHook('intended'),
    viaHook('changed'),
    t.test('SIGKILL as soon as QEMU appears in /proc (its pidfile, QMP and vm.json may not be there yet)', () =>
      pool.with(async (e) => {
        const run = startVmhost([...e.g, 'apply', e.file]);
        // watch for the QEMU of this state directory (a condition, polled; no sleep stands in for it)
        let seen: number | undefined;
        const ended = run.done.then(() => true);
        while (seen === undefined && !(await Promise.race([ended, new Promise<false>((r) => setImmediate(() => r(false)))]))) {
          seen = qemusOf(e.opts.stateDir)[0];
        }
        assert.ok(seen !== undefined, 'QEMU was seen before the CLI ended');
        run.child.kill('SIGKILL');
        const r = await run.done;
        assert.equal(r.signal, 'SIGKILL', r.stdout + r.stderr);
        assert.deepEqual(qemusOf(e.opts.stateDir), [seen], 'QEMU outlives the CLI (its own session)');
        await assertStatusTruthful(e, 'killed while QEMU starts');
        const notices: string[] = [];
        await apply(e.host, { ...e.opts, onProgress: (ev) => void (ev.type === 'notice' && notices.push(ev.message)) });
        assert.deepEqual(qemusOf(e.opts.stateDir), [seen], `the next apply adopts the running QEMU, starts no second one: ${notices.join(' | ')}`);
        await guestsReady(e);
        await down(e.host, e.opts);
        assert.deepEqual(qemusOf(e.opts.stateDir), [], 'down stopped it');
        assert.deepEqual(await hostSnapshot(e.ns), e.baseline);
      }),
    ),
  ]);
});

test('netns by path: the state directory is keyed by the namespace file, not shared with no --netns', async (t) => {
  const lab = await Lab.create({ prefix: 'vmhl-fault-', namespaces: { host: {} }, links: [{ a: { ns: 'host', name: 'eth0' }, b: { ns: 'host', name: 'eth1' } }] });
  t.after(() => lab.close());
  const host = parseHostFile(hostText('nsfs', false, []), { baseDir: ROOT });
  const byName = stateDirFor(host, { netns: lab.ns('host') });
  const byPath = stateDirFor(host, { netns: { path: netns.netnsPath(lab.ns('host')) } });
  const none = stateDirFor(host, {});
  assert.equal(byName, join('/run/vmhost', lab.ns('host'), 'nsfs'));
  assert.match(byPath, /^\/run\/vmhost\/nsfs\/\d+-\d+\/nsfs$/);
  assert.notEqual(byPath, none);
  const other = await Lab.create({ prefix: 'vmhl-fault-', namespaces: { x: {} } });
  t.after(() => other.close());
  assert.notEqual(stateDirFor(host, { netns: { path: netns.netnsPath(other.ns('x')) } }), byPath, 'two namespaces, two records');
});
