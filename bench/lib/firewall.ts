// The pieces of the firewall benchmarks (bench/firewall-rules.ts, bench:compare): the model of n
// port forwards and the same rules written by hand, as one iptables-restore batch and as
// `iptables -A` commands; emptying the tables between measurements.
import { netns } from '@vmhost/net';
import type { FirewallModel } from '@vmhost/firewall';
import { forwards } from '../firewall-forwards.js';

/** n port forwards of one owner. */
export function model(n: number): FirewallModel {
  return { owner: 'bench', portForwards: forwards(n) };
}

/** The same rules, written by hand: one DNAT and one FORWARD accept per forward, plain chains. */
export function handWritten(n: number): { text: string; commands: string[][] } {
  const nat: string[] = [];
  const fil: string[] = [];
  for (const f of forwards(n)) {
    nat.push(`-A RAW-PRE -i eth0 -p tcp -m addrtype --dst-type LOCAL -m tcp --dport ${f.port as number} -j DNAT --to-destination ${f.to}:80`);
    fil.push(`-A RAW-FWD -d ${f.to}/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT`);
  }
  const text = [
    '*filter', ':RAW-FWD - [0:0]', '-A RAW-FWD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT', ...fil, '-I FORWARD 1 -j RAW-FWD', 'COMMIT',
    '*nat', ':RAW-PRE - [0:0]', ...nat, '-I PREROUTING 1 -j RAW-PRE', 'COMMIT', '',
  ].join('\n');
  const commands: string[][] = [
    ['-t', 'filter', '-N', 'RAW-FWD'],
    ['-t', 'nat', '-N', 'RAW-PRE'],
    ['-t', 'filter', '-A', 'RAW-FWD', '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT'],
    ...fil.map((l) => ['-t', 'filter', ...l.split(' ')]),
    ...nat.map((l) => ['-t', 'nat', ...l.split(' ')]),
    ['-t', 'filter', '-I', 'FORWARD', '1', '-j', 'RAW-FWD'],
    ['-t', 'nat', '-I', 'PREROUTING', '1', '-j', 'RAW-PRE'],
  ];
  return { text, commands };
}

/** Runs a program in `ns`; throws with its stderr when it fails. */
export async function runIn(ns: string, cmd: string, a: string[], input?: string): Promise<void> {
  const r = await netns.run(ns, cmd, a, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`${cmd} ${a.slice(0, 6).join(' ')}: ${r.stderr}`);
}

/** Deletes the filter and nat tables of both families in `ns` (a clean start for each measurement). */
export async function resetTables(ns: string): Promise<void> {
  await runIn(ns, 'iptables-restore', [], '*filter\nCOMMIT\n*nat\nCOMMIT\n');
  await runIn(ns, 'ip6tables-restore', [], '*filter\nCOMMIT\n*nat\nCOMMIT\n');
}
