// The fault suite, part 1: the real `vmhost` CLI killed with SIGKILL at every step boundary of
// apply and of down: after the step's record was written ahead (`intended`), after the system
// changed (`changed`), after the record was confirmed (`recorded`), each at its exact point
// (VMHOST_TEST_FAULT drives the engine's checkpoints). After each: `status` agrees with the
// oracle, the next apply works (it reconciles what the killed run left) and makes the host exactly
// as a clean apply does, and down leaves the namespace exactly as before: links (with their
// aliases), addresses, routes, proxy neighbours, sysctls, iptables-save, ip6tables-save and
// processes, read with `ip -j`, the save tools, /proc/sys and the namespace's pids.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { apply, plan } from '@vmhost/host';
import { vmhost } from '../helpers/cli.js';
import { assertRecovers, assertStatusTruthful, hostText, Pool } from '../helpers/fault-env.js';

const PHASES = { apply: ['intended', 'changed', 'recorded'], down: ['changed', 'recorded'] } as const;

async function killPoints(t: TestContext, command: 'apply' | 'down', pool: Pool, ids: string[]): Promise<void> {
  const points = ids.map((_, i) => PHASES[command].map((phase) => ({ phase, i }))).flat();
  await Promise.all(
    points.map(({ phase, i }) =>
      t.test(`SIGKILL@${command}:${phase}:${i}`, () =>
        pool.with(async (e) => {
          if (command === 'down') await apply(e.host, e.opts);
          // this env's step i (its host's name is its own: so are its TAPs' names)
          const id = command === 'apply' ? (await plan(e.host, e.opts)).steps[i]?.id : undefined;
          const r = await vmhost([...e.g, command, e.file], { VMHOST_TEST_FAULT: `SIGKILL@${command}:${phase}:${i}` });
          assert.equal(r.signal, 'SIGKILL', `killed at its point (exit ${r.code}): ${r.stderr}`);
          const st = await assertStatusTruthful(e, 'after the kill');
          if (command === 'apply') assert.deepEqual(st.pending, phase === 'recorded' ? undefined : [id], 'status shows the unconfirmed step');
          const notices: string[] = [];
          await assertRecovers(e, `${command} killed at ${phase} of step ${i}`, notices);
          if (command === 'apply' && phase !== 'recorded') assert.ok(notices.some((n) => /an interrupted run had/.test(n)), `the intent was reconciled: ${notices.join(' | ')}`);
        }),
      ),
    ),
  );
}

const WORKERS = 4;

test('kill -9 at every step boundary of apply and of down: status is truthful, the next apply works, down restores the namespace', { concurrency: WORKERS }, async (t) => {
  const pool = new Pool((name) => hostText(name, false, ['web', 'mail']));
  t.after(() => pool.close());
  await pool.fill(WORKERS);
  const e = await pool.acquire();
  const ids = (await plan(e.host, e.opts)).steps.map((s) => s.id);
  pool.release(e);
  assert.ok(ids.length >= 14, `the host has ${ids.length} steps`);
  await Promise.all([killPoints(t, 'apply', pool, ids), killPoints(t, 'down', pool, ids)]);
});

