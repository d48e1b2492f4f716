// Unit tests of the netfilter codec and the conntrack module's pure parts, against bytes captured
// from the kernel (fixtures/capture-netfilter.ts): a conntrack dump of real flows read as
// `conntrack -L -o xml,id` printed it, the delete request conntrack(8) sends, nf_tables
// notifications and GETGEN. Plus filters (kernel-side CTA_FILTER and the client-side match),
// validation, and decoding damaged bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { codec, ValidationError, type ConntrackEntry, type ConntrackFilter } from '@vmhost/net';
import { checkFilter, deleteRequest, dumpRequests, matches, toConntrackEntry } from '../../packages/net/src/netfilter/entry.js';
import { rng } from '../helpers/rng.js';

interface Raw { type: number; flags: number; payload: string }
const fx = JSON.parse(readFileSync(new URL('./fixtures/netfilter-messages.json', import.meta.url), 'utf8')) as {
  nftables: { notifications: Raw[]; getgen: Raw[] };
  conntrack: { dump: Raw[]; xmlIpv4: string; xmlIpv6: string; deleteRequest: string };
};
const N = codec.nfConstants;
const hex = (m: { payload: string }): Buffer => Buffer.from(m.payload, 'hex');
const entries = fx.conntrack.dump.map((m) => toConntrackEntry(codec.decodeConntrackMessage(hex(m))));

/** The flows of conntrack's XML output, as plain records. */
function xmlFlows(xml: string): Array<Record<string, string | boolean>> {
  return [...xml.matchAll(/<flow>(.*?)<\/flow>/g)].map(([, f]) => {
    const r: Record<string, string | boolean> = {};
    for (const [, dir, body] of f!.matchAll(/<meta direction="(original|reply)">(.*?)<\/meta>/g)) {
      for (const [, k, v] of body!.matchAll(/<(src|dst|sport|dport)>([^<]*)</g)) r[`${dir}.${k}`] = v!;
      r[`${dir}.proto`] = /<layer4 protonum="(\d+)"/.exec(body!)![1]!;
    }
    const ind = /<meta direction="independent">(.*?)<\/meta>/.exec(f!)![1]!;
    for (const [, k, v] of ind.matchAll(/<(state|timeout|mark|zone|use|id)>([^<]*)</g)) r[k!] = v!;
    r.unreplied = ind.includes('<unreplied/>');
    r.assured = ind.includes('<assured/>');
    return r;
  });
}

test('a conntrack dump of real flows reads as conntrack -L -o xml,id prints it', () => {
  const flows = [...xmlFlows(fx.conntrack.xmlIpv4), ...xmlFlows(fx.conntrack.xmlIpv6)];
  assert.equal(entries.length, flows.length);
  assert.ok(flows.length >= 7, 'udp (dnat, mark, zone, ipv6), tcp established and syn_sent, icmp');
  for (const f of flows) {
    const e = entries.find((x) => x.id === Number(f.id))!;
    assert.ok(e, `entry ${String(f.id)}`);
    for (const dir of ['original', 'reply'] as const) {
      const t = dir === 'original' ? e.orig : e.reply;
      assert.equal(t.src, f[`${dir}.src`]);
      assert.equal(t.dst, f[`${dir}.dst`]);
      assert.equal(e.protocolNumber, Number(f[`${dir}.proto`]));
      assert.equal(t.srcPort, f[`${dir}.sport`] === undefined ? null : Number(f[`${dir}.sport`]));
      assert.equal(t.dstPort, f[`${dir}.dport`] === undefined ? null : Number(f[`${dir}.dport`]));
    }
    assert.equal(e.tcp?.state ?? undefined, f.state);
    assert.ok(Math.abs(e.timeout! - Number(f.timeout)) <= 3, `timeout ${e.timeout} ~ ${String(f.timeout)}`);
    assert.equal(e.mark, Number(f.mark));
    assert.equal(e.zone, f.zone === undefined ? 0 : Number(f.zone));
    assert.equal(e.status.seenReply, !f.unreplied);
    assert.equal(e.status.assured, f.assured);
    assert.equal(e.family, f['original.src']!.toString().includes(':') ? 6 : 4);
  }
  const dnat = entries.find((e) => e.orig.dstPort === 5000)!;
  assert.deepEqual([dnat.protocol, dnat.status.dstNat, dnat.reply.src, dnat.reply.srcPort], ['udp', true, '127.0.0.1', 6000]);
  const icmp = entries.find((e) => e.protocol === 'icmp')!;
  assert.deepEqual([icmp.orig.icmp?.type, icmp.orig.icmp?.code, icmp.orig.srcPort, icmp.tcp], [8, 0, null, null]);
  assert.equal(entries.find((e) => e.tcp?.state === 'ESTABLISHED')?.status.assured, true);
});

test('dump messages re-encode to the same bytes, attribute by attribute (unknown ones kept)', () => {
  for (const m of fx.conntrack.dump) {
    const b = hex(m);
    const again = codec.encodeConntrackMessage(codec.decodeConntrackMessage(b));
    assert.deepEqual(again.subarray(0, 4), b.subarray(0, 4));
    const set = (x: Buffer): string[] => codec.parseAttrs(x, 4).map((a) => `${a.type}:${a.nested ? 'n' : ''}${a.data.toString('hex')}`).sort();
    assert.deepEqual(set(again), set(b));
  }
});

test('a delete is the tuple conntrack(8) sends, byte for byte, plus the entry\'s id', () => {
  const theirs = Buffer.from(fx.conntrack.deleteRequest, 'hex');
  assert.equal(theirs.readUInt16LE(4), (N.NFNL_SUBSYS_CTNETLINK << 8) | N.IPCTNL_MSG_CT_DELETE);
  const e = entries.find((x) => x.family === 6)!;
  const { family, attrs, op } = deleteRequest(e);
  const ours = codec.encodeConntrackMessage({ header: { family }, attrs });
  assert.deepEqual(ours.subarray(0, 4), theirs.subarray(16, 20)); // nfgenmsg: AF_INET6, v0
  const orig = (b: Buffer): string => codec.parseAttrs(b, 4).find((a) => a.type === N.CTA_TUPLE_ORIG)!.data.toString('hex');
  assert.equal(orig(ours), orig(theirs.subarray(16, theirs.readUInt32LE(0))));
  assert.equal(codec.decodeConntrackMessage(ours).attrs.id, e.id);
  assert.match(op, /^conntrack\.delete udp orig 2001:db8::1:40001 -> 2001:db8::99:53$/);
  // By hand: the reply tuple, a zone; ICMP needs type, code and id.
  const byReply = deleteRequest({ protocol: 'icmp', reply: { src: '203.0.113.9', dst: '192.0.2.1', icmp: { type: 0, code: 0, id: 7 } }, zone: 3 });
  assert.deepEqual(byReply.attrs, { tupleReply: { ip: { v4Src: '203.0.113.9', v4Dst: '192.0.2.1' }, proto: { num: 1, icmpType: 0, icmpCode: 0, icmpId: 7 } }, zone: 3 });
});

test('nf_tables: the notifications of one iptables command end with NEWGEN naming it; GETGEN gives the generation', () => {
  const types = fx.nftables.notifications.map((m) => m.type);
  const newgen = (N.NFNL_SUBSYS_NFTABLES << 8) | N.NFT_MSG_NEWGEN;
  assert.equal(types[types.length - 1], newgen);
  assert.ok(types.slice(0, -1).every((t) => t >> 8 === N.NFNL_SUBSYS_NFTABLES && t !== newgen));
  const ev = codec.decodeNftGenMessage(hex(fx.nftables.notifications[fx.nftables.notifications.length - 1]!));
  assert.equal(ev.attrs.procName, 'iptables');
  assert.ok(ev.attrs.id! > 0 && ev.attrs.procPid! > 0);
  assert.equal(ev.header.resId, ev.attrs.id! & 0xffff); // the kernel also puts the generation in res_id
  const gen = codec.decodeNftGenMessage(hex(fx.nftables.getgen[0]!));
  assert.equal(gen.attrs.id, ev.attrs.id);
  assert.deepEqual(codec.encodeNftGenMessage(ev), hex(fx.nftables.notifications[fx.nftables.notifications.length - 1]!));
});

test('filters: validated, sent to the kernel as CTA_FILTER per family, and matched again here', () => {
  const f = checkFilter({ protocol: 'udp', origDst: '203.0.113.5', origDstPort: 5000 });
  const reqs = dumpRequests(f);
  assert.equal(reqs.length, 1); // the address gives the family
  assert.equal(reqs[0]!.family, 2);
  assert.deepEqual(reqs[0]!.attrs.filter, { origFlags: N.CTA_FILTER_F_CTA_IP_DST | N.CTA_FILTER_F_CTA_PROTO_NUM | N.CTA_FILTER_F_CTA_PROTO_DST_PORT });
  assert.deepEqual(reqs[0]!.attrs.tupleOrig, { ip: { v4Dst: '203.0.113.5' }, proto: { num: 17, dstPort: 5000 } });
  assert.deepEqual(entries.filter((e) => matches(e, f)).map((e) => e.orig.dstPort), [5000]);
  // No family: one dump per family; no tuple field: one dump of everything; the mark as CTA_MARK.
  assert.deepEqual(dumpRequests(checkFilter({ protocol: 'tcp' })).map((r) => r.family), [2, 10]);
  assert.deepEqual(dumpRequests(checkFilter({})), [{ family: 0, attrs: {} }]);
  assert.deepEqual(dumpRequests(checkFilter({ mark: 42 }))[0]!.attrs, { mark: 42, markMask: 0xffffffff });
  assert.deepEqual(dumpRequests(checkFilter({ protocol: 'udp', replySrc: '127.0.0.1', replySrcPort: 6000 }), false), [{ family: 2, attrs: {} }]);
  const cases: Array<[ConntrackFilter, number[] | string]> = [
    [{ mark: 42 }, [5353]],
    [{ zone: 7 }, [5454]],
    [{ family: 6 }, [53]],
    [{ protocol: 'tcp', origDstPort: 7000 }, [7000]],
    [{ replySrc: '127.0.0.1', protocol: 'udp' }, [5000]],
    [{ protocol: 'icmp' }, 'icmp'],
    [{ origSrc: '2001:0db8:0::1' }, [53]], // compared in canonical form
  ];
  for (const [filter, want] of cases) {
    const got = entries.filter((e) => matches(e, checkFilter(filter)));
    if (typeof want === 'string') assert.deepEqual(got.map((e) => e.protocol), [want]);
    else assert.deepEqual(got.map((e) => e.orig.dstPort).sort(), want, JSON.stringify(filter));
  }
});

test('bad filters and delete specs: ValidationError naming the field', () => {
  const bad: Array<[unknown, string]> = [
    [null, 'filter'],
    [{ protocol: 'quic' }, 'filter.protocol'],
    [{ protocol: 300 }, 'filter.protocol'],
    [{ origDstPort: 53 }, 'filter.origDstPort'],
    [{ protocol: 'icmp', origDstPort: 53 }, 'filter.origDstPort'],
    [{ protocol: 'udp', replySrcPort: 70000 }, 'filter.replySrcPort'],
    [{ origDst: '203.0.113.300' }, 'filter.origDst'],
    [{ family: 4, origDst: '2001:db8::1' }, 'filter.origDst'],
    [{ origSrc: '192.0.2.1', origDst: '2001:db8::1' }, 'filter.origDst'],
    [{ markMask: 1 }, 'filter.markMask'],
    [{ zone: -1 }, 'filter.zone'],
    [{ family: 5 }, 'filter.family'],
    [{ origdst: '192.0.2.1' }, 'filter.origdst'],
  ];
  for (const [filter, field] of bad) assert.throws(() => checkFilter(filter), (e: unknown) => e instanceof ValidationError && e.field === field, JSON.stringify(filter));
  const dels: Array<[unknown, string]> = [
    [undefined, 'entry'],
    [{ protocol: 'udp' }, 'orig'],
    [{ protocol: 'udp', orig: { src: '192.0.2.1', dst: '203.0.113.5', srcPort: 1 } }, 'orig.dstPort'],
    [{ protocol: 'udp', orig: { src: '192.0.2.1', dst: '2001:db8::1', srcPort: 1, dstPort: 2 } }, 'orig.dst'],
    [{ protocol: 'icmp', orig: { src: '192.0.2.1', dst: '203.0.113.5' } }, 'orig.icmp'],
    [{ protocol: 'icmp', orig: { src: '192.0.2.1', dst: '203.0.113.5', icmp: { type: 8, code: 0 } } }, 'orig.icmp.id'],
    [{ protocol: 'udp', family: 6, orig: { src: '192.0.2.1', dst: '203.0.113.5', srcPort: 1, dstPort: 2 } }, 'orig.src'],
    [{ protocol: 'udp', zone: 65536, orig: { src: '192.0.2.1', dst: '203.0.113.5', srcPort: 1, dstPort: 2 } }, 'zone'],
    [{ protocol: 'udp', id: -1, orig: { src: '192.0.2.1', dst: '203.0.113.5', srcPort: 1, dstPort: 2 } }, 'id'],
  ];
  for (const [spec, field] of dels) assert.throws(() => deleteRequest(spec), (e: unknown) => e instanceof ValidationError && e.field === field, JSON.stringify(spec));
});

test('fuzz: truncated, mutated and random netfilter messages decode or throw CodecError only', () => {
  const seeds = [...fx.conntrack.dump, ...fx.nftables.notifications, ...fx.nftables.getgen.slice(0, 1)].map(hex);
  const decoders: Array<(b: Buffer) => unknown> = [
    (b) => toConntrackEntry(codec.decodeConntrackMessage(b)),
    codec.decodeNftGenMessage,
  ];
  const next = rng(0x0c0ffee);
  let cases = 0;
  const run = (b: Buffer): void => {
    for (const dec of decoders) {
      cases++;
      try {
        dec(b);
      } catch (err) {
        if (!(err instanceof codec.CodecError)) assert.fail(`threw ${String(err)} on ${b.toString('hex')}`);
      }
    }
  };
  for (const s of seeds) for (let n = 0; n <= s.length; n++) run(s.subarray(0, n));
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.from(seeds[next() % seeds.length]!);
    for (let k = 0; k <= next() % 4; k++) b[next() % b.length] = next() & 0xff;
    run(b);
  }
  for (let i = 0; i < 1000; i++) run(Buffer.from(Array.from({ length: next() % 64 }, () => next() & 0xff)));
  assert.ok(cases > 10_000);
});

/** Entries are plain data: JSON round trip keeps them. */
test('entries are plain, serialisable data', () => {
  const e: ConntrackEntry = entries[0]!;
  assert.deepEqual(JSON.parse(JSON.stringify(e)), e);
});
