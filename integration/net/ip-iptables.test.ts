// ip.iptablesText against the oracle: rules with random IPv4 and IPv6 sources (hosts, networks,
// host bits set, IPv4-mapped and -compatible addresses) are loaded with iptables-restore /
// ip6tables-restore in a fresh namespace, and iptables-save must print each source exactly as
// ip.iptablesText predicts. The seed is new every run (VMHOST_SEED=N replays it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ip, netns } from '@vmhost/net';
import { rng } from '../../test/helpers/rng.js';
import { freshNetns } from '../helpers/ns.js';

const SEED = Number(process.env.VMHOST_SEED ?? Math.floor(Math.random() * 0xffffffff)) >>> 0;
const next = rng(SEED);
const N = 150;

function randomInput(family: 4 | 6): string {
  const b = new Uint8Array(family === 4 ? 4 : 16);
  for (let i = 0; i < b.length; i++) b[i] = next() & 0xff;
  if (family === 6) {
    const shape = next() % 6;
    if (shape === 0) b.fill(0, 0, 12); // IPv4-compatible
    if (shape === 1) (b.fill(0, 0, 10), (b[10] = b[11] = 0xff)); // IPv4-mapped
    if (shape === 2) for (let i = 0; i < 16; i += 2) if (next() % 2) b[i] = b[i + 1] = 0; // zero runs
    if (shape === 3) b.fill(0, 0, 15); // ::N
  }
  const text = family === 4 ? ip.formatAddress(b) : next() % 2 ? ip.formatAddress(b) : ip.formatAddressInetNtop(b);
  const max = family === 4 ? 32 : 128;
  const r = next() % 4;
  if (r === 0) return text; // a bare host address
  return `${text}/${r === 1 ? max : next() % (max + 1)}`;
}

async function saved(ns: string, family: 4 | 6, inputs: string[]): Promise<string[]> {
  const restore = family === 4 ? 'iptables-restore' : 'ip6tables-restore';
  const save = family === 4 ? 'iptables-save' : 'ip6tables-save';
  const rules = inputs.map((s) => `-A VMHT-IP -s ${s} -j RETURN`).join('\n');
  const r = await netns.run(ns, restore, ['--noflush'], { input: `*filter\n:VMHT-IP - [0:0]\n${rules}\nCOMMIT\n` });
  assert.equal(r.code, 0, `${restore}: ${r.stderr}`);
  const out = await netns.run(ns, save, ['-t', 'filter']);
  assert.equal(out.code, 0, out.stderr);
  return out.stdout.split('\n').filter((l) => l.startsWith('-A VMHT-IP ')).map((l) => /-s (\S+)/.exec(l)?.[1] ?? `(no -s in ${l})`);
}

test(`iptables-save prints every source as ip.iptablesText predicts (${N} IPv4 + ${N} IPv6, seed ${SEED})`, async (t) => {
  const ns = await freshNetns(t, 'ip-save');
  for (const family of [4, 6] as const) {
    const inputs = Array.from({ length: N }, () => randomInput(family));
    // iptables leaves out a match on 0.0.0.0/0 (::/0): it matches everything.
    const expected = inputs.map((s) => ip.iptablesText(s)).map((s) => (/\/0$/.test(s) ? undefined : s));
    const got = await saved(ns, family, inputs.filter((_, i) => expected[i] !== undefined));
    const want = expected.filter((s): s is string => s !== undefined);
    assert.equal(got.length, want.length, `IPv${family}: one saved rule per input (seed ${SEED})`);
    for (let i = 0; i < want.length; i++) {
      assert.equal(got[i], want[i], `IPv${family} input ${inputs.filter((_, j) => expected[j] !== undefined)[i]} (seed ${SEED}: VMHOST_SEED=${SEED} replays it)`);
    }
  }
});
