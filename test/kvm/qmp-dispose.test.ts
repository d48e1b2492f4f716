// QmpClient is AsyncDisposable: leaving an `await using` scope closes the connection (as close()
// does: the peer sees the socket end, the client is closed). Against the in-process fake QMP server.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { QmpClient } from '@vmhost/kvm';
import { FakeQmpServer } from './fake-qmp.js';

test('await using closes the QMP connection at the end of the scope, also when the scope throws', async (t) => {
  const srv = await FakeQmpServer.start();
  t.after(() => srv.close());
  let kept: QmpClient | undefined;
  {
    const connP = srv.nextConnection();
    await using qmp = await QmpClient.connect({ path: srv.path, timeoutMs: 5_000 });
    kept = qmp;
    const conn = await connP;
    assert.equal(qmp.state, 'running');
    const ended = once(conn.socket, 'close');
    t.after(() => ended);
  }
  assert.equal(kept.state, 'closed');
  assert.deepEqual(await kept.closed, { reason: 'closed' });

  const connP = srv.nextConnection();
  let inner: QmpClient | undefined;
  await assert.rejects(
    (async () => {
      await using qmp = await QmpClient.connect({ path: srv.path, timeoutMs: 5_000 });
      inner = qmp;
      await connP;
      throw new Error('scope failed');
    })(),
    /scope failed/,
  );
  assert.equal(inner?.state, 'closed');
  assert.equal(typeof QmpClient.prototype[Symbol.asyncDispose], 'function');
});
