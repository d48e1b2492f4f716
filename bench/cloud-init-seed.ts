// Time to build a cloud-init NoCloud seed volume, per format and builder: our own ISO 9660 + Rock
// Ridge writer (packages/host/src/guests, in-process, rendering included) against the Debian
// tools spawned with argument arrays: genisoimage and xorriso (ISO with Joliet + Rock Ridge, as
// cloud-localds does), mkfs.vfat + mcopy (FAT). Prints the median and p90 of N builds and the
// image size. A tool that is not installed is reported as such (xorriso, mtools and dosfstools
// are not in the set-up; `apt-get install xorriso mtools dosfstools` to compare).
// Usage: npm run bench -- bench/cloud-init-seed.ts [N]
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderCloudInit, seedImage, writeSeed, type CloudInitInput } from '../packages/host/src/guests/cloud-init.js';

const N = Number(process.argv[2] ?? 50);
const dir = mkdtempSync(join(tmpdir(), 'vmhost-bench-seed-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const input: CloudInitInput = {
  vm: 'web',
  domain: 'lan',
  sshAuthorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMvGl4fikxymI+oCkb9zqo2kS6v4BsKrnS5xpVPRnyhw ops@example'],
  userData: '#cloud-config\npackages: [nginx]\nruncmd:\n  - [systemctl, enable, --now, nginx]\n',
  network: { mac: '52:54:00:12:34:56', ipv4: '198.51.100.10/24', gateway4: '198.51.100.1', ipv6: '2001:db8:1::100', dns: ['198.51.100.1', '2001:db8:1::1'], search: ['lan'] },
};
const seed = renderCloudInit(input);
const src = join(dir, 'src');
mkdirSync(src);
writeFileSync(join(src, 'meta-data'), seed.metaData);
writeFileSync(join(src, 'user-data'), seed.userData);
writeFileSync(join(src, 'network-config'), seed.networkConfig!);
const srcFiles = ['meta-data', 'user-data', 'network-config'].map((f) => join(src, f));

function has(cmd: string): boolean {
  return spawnSync('which', [cmd]).status === 0;
}
function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr?.toString()}`);
}

function measure(name: string, out: string, build: () => void): void {
  const times: number[] = [];
  build(); // warm-up
  for (let i = 0; i < N; i++) {
    rmSync(out, { force: true });
    const t0 = performance.now();
    build();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const q = (p: number): string => times[Math.min(times.length - 1, Math.floor(p * times.length))]!.toFixed(2);
  console.log(`${name.padEnd(44)} median ${q(0.5).padStart(7)} ms   p90 ${q(0.9).padStart(7)} ms   ${String(statSync(out).size).padStart(7)} bytes`);
}

console.log(`cloud-init seed volume, ${N} builds each (render + image + file)`);
const own = join(dir, 'own.iso');
measure('own ISO 9660 + Rock Ridge (writeSeed)', own, () => writeSeed(own, input));
const mem = join(dir, 'mem.iso');
measure('own ISO, render + image in memory only', mem, () => writeFileSync(mem, seedImage(renderCloudInit(input))));
for (const tool of ['genisoimage', 'xorriso']) {
  const out = join(dir, `${tool}.iso`);
  if (!has(tool)) {
    console.log(`${`${tool} (Joliet + Rock Ridge)`.padEnd(44)} not installed`);
    continue;
  }
  const args = tool === 'xorriso' ? ['-as', 'mkisofs', '-quiet'] : ['-quiet'];
  measure(`${tool} (Joliet + Rock Ridge)`, out, () => run(tool, [...args, '-output', out, '-volid', 'cidata', '-joliet', '-rock', ...srcFiles]));
}
const fat = join(dir, 'seed.vfat');
if (has('mkfs.vfat') && has('mcopy')) {
  measure('mkfs.vfat + mcopy (FAT12, 1 MiB)', fat, () => {
    run('mkfs.vfat', ['-C', '-n', 'CIDATA', fat, '1024']);
    run('mcopy', ['-o', '-i', fat, ...srcFiles, '::']);
  });
} else {
  console.log(`${'mkfs.vfat + mcopy (FAT)'.padEnd(44)} not installed`);
}
