// `npm run bench:compare`: every figure side by side, in one process tree, in alternated rounds.
// Sections: links (create and dump; anchors ip, vishvananda/netlink, pyroute2), QMP (a raw
// socket), firewall (a raw iptables-restore) and host scale (plan/apply/no-op plan/down through
// the CLI at 10, 100, 300, 1,000 VMs).
// Prints one table (median of the rounds, spread = min–max, ratio to the section's anchor);
// `--markdown` prints it as Markdown for docs/performance.md; `--quick` uses small sizes.
// Options: --rounds N (3; at least 9 for link creation, 5 for QMP, 11 for the firewall), --pairs N (1000),
// --sizes 10,100,300,1000, --only links|qmp|firewall|scale
import { formatRows, type Row } from './stats.js';
import { missingPackages } from './anchors.js';
import { linksSection } from './links.js';
import { hostScaleSection } from './host-scale.js';
import { qmpSection } from './qmp.js';
import { firewallSection } from './firewall.js';

const argv = process.argv.slice(2);
const flag = (name: string): boolean => argv.includes(`--${name}`);
const value = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
};
const quick = flag('quick');
const rounds = Number(value('rounds') ?? (quick ? 1 : 3));
const pairs = Number(value('pairs') ?? (quick ? 200 : 1000));
const sizes = (value('sizes') ?? (quick ? '10,50' : '10,100,300,1000')).split(',').map(Number);
const only = value('only');
const log = (s: string): void => void process.stderr.write(`${s}\n`);

if (process.getuid?.() !== 0) {
  console.error('bench:compare needs root (it creates network namespaces)');
  process.exit(2);
}
const missing = missingPackages();
if (missing.length) {
  console.error(`bench:compare needs the Debian packages ${missing.join(' ')} (apt-get install ${missing.join(' ')})`);
  process.exit(2);
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

const started = new Date();
const rows: Row[] = [];
if (!only || only === 'links') rows.push(...(await linksSection({ pairs, dumpSizes: quick ? [401] : [2001, 10001], rounds, createRounds: Math.max(rounds, quick ? 1 : 9), log })));
if (!only || only === 'qmp') rows.push(...(await qmpSection({ n: quick ? 500 : 2000, rounds: Math.max(rounds, quick ? 1 : 5), log })));
if (!only || only === 'firewall') rows.push(...(await firewallSection({ sizes: quick ? [1000] : [1000, 10000], rounds: Math.max(rounds, quick ? 1 : 11), log })));
if (!only || only === 'scale') rows.push(...(await hostScaleSection({ sizes, rounds: quick ? 1 : Math.min(rounds, 3), log })));

console.log(`bench:compare ${started.toISOString().slice(0, 10)}, ${rounds} round(s) (link creation at least 9, QMP at least 5, the firewall at least 11); ratio > 1 = faster than the anchor (host scale: marginal cost per added VM relative to the first step, 1.00 = linear)`);
console.log(formatRows(rows, flag('markdown')));
for (const r of rows.filter((x) => x.note)) console.log(`  ${r.what} / ${r.tool}: ${r.note}`);
