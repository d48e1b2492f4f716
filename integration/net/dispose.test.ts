// Rtnl is Disposable: leaving a `using` scope closes the handle (its netlink socket and its
// namespace fd), also when the scope throws. The oracle for the fd: /proc/self/fd.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { Rtnl } from '@vmhost/net';
import { freshNetns, ipJson } from '../helpers/ns.js';

const fds = (): number => readdirSync('/proc/self/fd').length;

test('using closes the Rtnl handle at the end of the scope, also when the scope throws', async (t) => {
  const ns = await freshNetns(t, 'dispose');
  const before = fds();
  let kept: Rtnl | undefined;
  {
    using h = await Rtnl.open({ netns: ns });
    kept = h;
    await h.links.add({ kind: 'bridge', name: 'br0' });
    assert.ok(fds() > before, 'the open handle holds fds');
  }
  assert.equal(kept.isClosed, true);
  assert.equal(fds(), before, 'socket and namespace fd closed');
  assert.deepEqual((await ipJson<Array<{ ifname: string }>>(ns, ['link', 'show', 'br0'])).map((l) => l.ifname), ['br0'], 'what it did stays');

  const before2 = fds(); // after ipJson's spawn (libuv may keep a signal pipe from then on)
  let inner: Rtnl | undefined;
  await assert.rejects(
    (async () => {
      using h = await Rtnl.open({ netns: ns });
      inner = h;
      throw new Error('scope failed');
    })(),
    /scope failed/,
  );
  assert.equal(inner?.isClosed, true);
  assert.equal(fds(), before2);
});
