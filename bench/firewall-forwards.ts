// The port forwards both firewall benchmarks use: n TCP forwards from 10000+i to 10.x.y.z:80 on
// eth0, in ten groups (no OUTPUT rules, so each forward is one DNAT and one FORWARD accept).
import type { PortForward } from '@vmhost/firewall';

/** `n` port forwards, the same for bench/firewall-rules.ts and bench/firewall-render.ts. */
export function forwards(n: number): PortForward[] {
  return Array.from({ length: n }, (_, i) => ({
    protocol: 'tcp' as const,
    port: 10000 + i,
    to: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${(i & 255) || 1}`,
    toPort: 80,
    inInterface: 'eth0',
    fromHost: false,
    group: `g${i % 10}`,
  }));
}
