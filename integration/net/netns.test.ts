import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { netns, ValidationError } from '@vmhost/net';
import { freshNetns, ipJson, reserveNetns, sh } from '../helpers/ns.js';

test('netns.add creates a namespace that ip netns sees, with only lo, and delete removes it', async (t) => {
  const name = await reserveNetns(t, 'ns');
  await netns.add(name);
  try {
    assert.ok((await netns.list()).includes(name));
    const ipList = await sh(name, 'ip', ['netns', 'list']);
    assert.match(ipList, new RegExp(`^${name}\\b`, 'm'));
    const links = await ipJson<Array<{ ifname: string }>>(name, ['link', 'show']);
    assert.deepEqual(links.map((l) => l.ifname), ['lo']);
    await assert.rejects(netns.add(name), { code: 'EEXIST' });
  } finally {
    await netns.delete(name);
  }
  assert.ok(!(await netns.list()).includes(name));
  await assert.rejects(netns.delete(name), { code: 'ENOENT' });
});

test('netns.spawn runs the child inside the namespace and leaves this process where it was', async (t) => {
  const name = await freshNetns(t, 'spawn');
  const before = readlinkSync('/proc/thread-self/ns/net');
  const inside = (await sh(name, 'readlink', ['/proc/self/ns/net'])).trim();
  assert.notEqual(inside, before);
  assert.equal(readlinkSync('/proc/thread-self/ns/net'), before);
  assert.equal(netns.readFileIn(name, '/proc/sys/net/ipv4/ip_forward').trim(), '0');
  const child = netns.spawn(name, 'sleep', ['30']);
  await new Promise((r) => child.once('spawn', r));
  assert.deepEqual(await netns.pids(name), [child.pid]);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
});

test('namespace names are validated before anything is touched', async () => {
  for (const bad of ['', 'a/b', 'a b', '..', 'x'.repeat(256)]) {
    await assert.rejects(netns.add(bad), (e: unknown) => e instanceof ValidationError && e.field === 'name');
  }
  assert.throws(() => netns.spawn('ok', 'true', [], { shell: true }), ValidationError);
});
