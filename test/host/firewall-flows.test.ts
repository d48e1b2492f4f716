// The forwards whose conntrack entries an update deletes (engine/kinds/firewall-flows.ts,
// staleMappings): exactly the public ports whose target changed or that went, per port of a range,
// per protocol and public address. Pure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FirewallModel, PortForward } from '@vmhost/firewall';
import { staleMappings } from '../../packages/host/src/engine/kinds/firewall-flows.js';

const model = (...portForwards: PortForward[]): FirewallModel => ({ owner: 't', portForwards });
const fw = (port: PortForward['port'], to: string, o: Partial<PortForward> = {}): PortForward => ({ protocol: 'tcp', port, to, ...o });
const text = (m: FirewallModel, n: FirewallModel): string[] => staleMappings(m, n).map((s) => `${s.protocol} ${s.destination ?? '*'}:${s.port}>${s.to}:${s.toPort}`);

test('unchanged forwards keep their flows; a changed target, a changed target port and a removed forward do not', () => {
  const a = '192.168.0.10';
  const b = '192.168.0.11';
  const base = model(fw(80, a), fw(53, a, { protocol: 'udp', toPort: 5353 }), fw(22, b));
  assert.deepEqual(text(base, base), []);
  // the same forwards in another order, in other groups: nothing
  assert.deepEqual(text(base, model(fw(22, b, { group: 'x' }), fw(80, a, { group: 'y' }), fw(53, a, { protocol: 'udp', toPort: 5353 }))), []);
  assert.deepEqual(text(base, model(fw(80, b), fw(53, a, { protocol: 'udp', toPort: 53 }))), ['tcp *:80>192.168.0.10:80', 'udp *:53>192.168.0.10:5353', 'tcp *:22>192.168.0.11:22']);
  // a new forward stales nothing; tcp and udp of the same port are apart
  assert.deepEqual(text(base, model(fw(80, a), fw(53, a, { protocol: 'udp', toPort: 5353 }), fw(22, b), fw(53, b))), []);
});

test('ranges per port, public addresses apart', () => {
  const a = '192.168.0.10';
  assert.deepEqual(text(model(fw([8000, 8003], a, { toPort: 9000 })), model(fw([8000, 8001], a, { toPort: 9000 }), fw([8002, 8003], a, { toPort: 9102 }))), [
    'tcp *:8002>192.168.0.10:9002',
    'tcp *:8003>192.168.0.10:9003',
  ]);
  // the public address given: the forward of any address is another forward
  assert.deepEqual(text(model(fw(80, a)), model(fw(80, a, { destination: '198.51.100.7' }))), ['tcp *:80>192.168.0.10:80']);
  assert.deepEqual(text(model(fw(80, a, { destination: '198.51.100.7' })), model()), ['tcp 198.51.100.7:80>192.168.0.10:80']);
});
