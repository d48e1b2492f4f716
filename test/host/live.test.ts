// The live view's firewall saves started ahead of need (packages/host/src/engine/live.ts): the
// programs run at a lower priority, so that the run that reads them early is not slowed by them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { getPriority } from 'node:os';
import type { Starter } from '@vmhost/firewall';
import { lowPriority, PREFETCH_NICENESS } from '../../packages/host/src/engine/live.js';

test('lowPriority: each program started runs at the niceness given; one that is gone is left alone', async (t) => {
  const started: number[] = [];
  t.after(() => {
    for (const pid of started) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  });
  // a real process, so that its priority is the kernel's answer
  const sleeper: Starter = (command, args) => {
    const child = spawn(command, args, { stdio: 'ignore' });
    started.push(child.pid!);
    const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => child.on('exit', (code) => res({ code, stdout: '', stderr: '' })));
    const kill = (): Promise<{ code: number | null; stdout: string; stderr: string }> => {
      child.kill('SIGKILL');
      return exited;
    };
    return { pid: child.pid, write: () => undefined, end: () => exited, kill };
  };
  const before = getPriority(process.pid);
  const p = lowPriority(sleeper, PREFETCH_NICENESS)('sleep', ['30']);
  assert.equal(getPriority(p.pid!), PREFETCH_NICENESS);
  assert.equal(getPriority(process.pid), before, 'the caller keeps its own priority');
  assert.equal(PREFETCH_NICENESS, 10);
  // a program without a pid (it could not be started), or one that exited already: no error
  const none = lowPriority(() => ({ pid: undefined, write: () => undefined, end: () => Promise.reject(new Error('ENOENT')), kill: () => Promise.reject(new Error('ENOENT')) }), 10)('missing', []);
  assert.equal(none.pid, undefined);
  const gone = lowPriority(() => ({ pid: 0x7ffffffe, write: () => undefined, end: async () => ({ code: 0, stdout: '', stderr: '' }), kill: async () => ({ code: 0, stdout: '', stderr: '' }) }), 10)('x', []);
  assert.equal(gone.pid, 0x7ffffffe);
  await p.kill();
});
