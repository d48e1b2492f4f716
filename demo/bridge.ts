// Bridge demo (npm run demo:bridge; issue 2's stage): the seed guide's bridge, built natively in a throwaway network namespace.
//   veth0/veth1; veth0 with MAC de:ad:be:ef:24:31, promiscuous, up, enslaved to br0;
//   br0 with the same MAC, STP off, 192.168.0.1/24; a persistent TAP (tap0) on br0.
// Prints the links and addresses as tables, then removes the namespace (also on error or Ctrl-C).
import { Rtnl, type Link, type Address } from '@vmhost/net';
import { bareNamespace } from '@vmhost/lab';

const MAC = 'de:ad:be:ef:24:31';
// Made with the lab kit: owned by this process (the demo's sweep leaves it alone while it runs),
// removed at the end, at exit, or by the next sweep of `vmhd-` after a crash.
const ns = await bareNamespace({ prefix: 'vmhd-', tag: 'bridge' });
const NS = ns.name;
process.once('SIGINT', () => {
  void ns.remove().finally(() => process.exit(130));
});

function table(rows: Array<Record<string, string | number>>): string {
  const cols = Object.keys(rows[0] ?? {});
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const fmt = (vals: string[]) => vals.map((v, i) => v.padEnd(width[i]!)).join('  ').trimEnd();
  return [fmt(cols), fmt(width.map((w) => '-'.repeat(w))), ...rows.map((r) => fmt(cols.map((c) => String(r[c]))))].join('\n');
}

const linkRow = (l: Link) => ({
  index: l.index,
  name: l.name,
  kind: l.tun ? l.tun.mode ?? 'tun' : (l.kind ?? (l.flags.loopback ? 'loopback' : '-')),
  mac: l.mac ?? '-',
  mtu: l.mtu,
  state: l.operstate,
  flags: Object.entries(l.flags).filter(([, v]) => v).map(([k]) => k).join(',') || '-',
  master: l.master ?? '-',
  info: l.bridge ? `stp ${l.bridge.stp ? 'on' : 'off'}, forward delay ${l.bridge.forwardDelay}s` : l.veth ? `peer #${l.veth.peerIndex}` : l.tun ? `persistent ${l.tun.persist}` : '-',
});
const addrRow = (a: Address) => ({ link: a.link ?? String(a.index), family: `IPv${a.family}`, address: a.cidr, broadcast: a.broadcast ?? '-', scope: String(a.scope) });

try {
  const h = await Rtnl.open({ netns: NS });
  try {
    await h.links.add({ kind: 'bridge', name: 'br0', mac: MAC, stp: false });
    await h.links.add({ kind: 'veth', name: 'veth0', mac: MAC, promisc: true, up: true, master: 'br0', peer: { name: 'veth1' } });
    await h.links.add({ kind: 'tap', name: 'tap0', master: 'br0', up: true });
    await h.addresses.add('br0', '192.168.0.1/24', { broadcast: true });
    await h.links.set('br0', { up: true });
    await h.links.set('veth1', { up: true });
    console.log(`network namespace ${NS}\n`);
    console.log(table((await h.links.list()).map(linkRow)));
    console.log('');
    console.log(table((await h.addresses.list()).map(addrRow)));
  } finally {
    h.close();
  }
} finally {
  await ns.remove();
  console.log(`\nremoved ${NS}`);
}
