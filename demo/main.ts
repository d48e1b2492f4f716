// The demo (npm run demo, the README's main command): the seed guide's whole host from one host
// file, inside network namespaces, with two real QEMU guests; proven from an `internet` namespace
// (IPv4 port forwards, each VM on its own public IPv6 address, the plan-B IPv6 proxy, NAT source,
// static DHCP leases), then torn down and checked that nothing is left. See packages/host/src/demo.ts.
// Options: --keep (leave it up), --json, --real (a real Debian 12 cloud guest too, configured by
// nothing but the host: cloud-init seed, RA, DHCPv6, names; logged into over ssh; minutes on TCG).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runDemo, type RealGuest } from '@vmhost/host';

const args = process.argv.slice(2);
const root = fileURLToPath(new URL('..', import.meta.url));
// The repository keeps its test guest in .cache/guest (scripts/setup.sh builds it with `vmhost guest build`).
const guestDir = join(root, '.cache/guest');

/** The Debian 12 cloud image of .cache/debian-guest, built first when missing or stale (cached: ~5 ms when current). */
function debianGuest(): RealGuest {
  const built = spawnSync('bash', [join(root, 'scripts/build-debian-guest.sh')], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (built.status !== 0) throw new Error('scripts/build-debian-guest.sh failed');
  const dir = join(root, '.cache/debian-guest');
  const meta = JSON.parse(readFileSync(join(dir, 'guest.json'), 'utf8')) as { image: string; append: string };
  return { image: join(dir, meta.image), kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), append: meta.append };
}

const real = args.includes('--real') ? debianGuest() : undefined;
const ok = await runDemo({ keep: args.includes('--keep'), json: args.includes('--json'), guestDir, ...(real ? { real } : {}) });
process.exitCode = ok ? 0 : 1;
