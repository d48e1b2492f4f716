// The demo (npm run demo, the README's main command): the seed guide's whole host from one host
// file, inside network namespaces, with two real QEMU guests; proven from an `internet` namespace
// (IPv4 port forwards, each VM on its own public IPv6 address, the plan-B IPv6 proxy, NAT source,
// static DHCP leases), then torn down and checked that nothing is left. See packages/host/src/demo.ts.
// Options: --keep (leave it up), --json.
import { fileURLToPath } from 'node:url';
import { runDemo } from '@vmhost/host';

const args = process.argv.slice(2);
// The repository keeps its test guest in .cache/guest (scripts/setup.sh builds it with `vmhost guest build`).
const guestDir = fileURLToPath(new URL('../.cache/guest', import.meta.url));
const ok = await runDemo({ keep: args.includes('--keep'), json: args.includes('--json'), guestDir });
process.exitCode = ok ? 0 : 1;
