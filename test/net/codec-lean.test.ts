// The fast paths of the list operations against the full decoders they replace: for every kernel
// capture, every prefix of it, thousands of mutated captures and random attribute lists, the
// public object made by the fast path equals (deepStrictEqual) the one made from the full decode,
// or both throw the same CodecError (message and offset). Links: toLink of the lean view against
// toLink of the full decode. Addresses, routes, neighbours are read straight from the payload;
// the reference is the conversion from the full decode they replaced (kept here as the oracle).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { codec } from '@vmhost/net';
import { be16, decodeAttrs, flag, hwaddr, in4, in6, ip, s32, string, u16, u32, u64, u8, Writer, type Schema, type ValueCodec } from '../../packages/net/src/codec/attrs.js';
import { linkSchema } from '../../packages/net/src/codec/link.js';
import { addressSchema } from '../../packages/net/src/codec/address.js';
import { routeSchema } from '../../packages/net/src/codec/route.js';
import { neighborSchema } from '../../packages/net/src/codec/neighbor.js';
import { decodeLinkView, toLink } from '../../packages/net/src/links/link.js';
import { readAddress, scopeName, toAddress } from '../../packages/net/src/addresses.js';
import { PROTOCOLS, readRoute, toRoute, TYPES } from '../../packages/net/src/routes.js';
import { readNeighbor, toNeighbor } from '../../packages/net/src/neighbors.js';
import type { Address, Neighbor, NeighborState, Route, RouteType } from '../../packages/net/src/types.js';

const C = codec.constants;

// ------------------------------------------------------- the oracles: conversions of full decodes

function refAddress(m: codec.AddressMessage, names?: ReadonlyMap<number, string>): Address {
  const a = m.attrs;
  const family = m.header.family === C.AF_INET6 ? 6 : 4;
  const address = a.local ?? a.address ?? '';
  const f = a.flags ?? m.header.flags;
  const ci = a.cacheinfo;
  const bit = (b: number) => !!(f & b);
  return {
    family,
    address,
    prefixLength: m.header.prefixLength,
    cidr: `${address}/${m.header.prefixLength}`,
    index: m.header.index,
    link: names?.get(m.header.index) ?? null,
    scope: scopeName(m.header.scope),
    label: a.label ?? null,
    broadcast: a.broadcast ?? null,
    peer: a.local !== undefined && a.address !== undefined && a.address !== a.local ? a.address : null,
    flags: {
      permanent: bit(C.IFA_F_PERMANENT), secondary: bit(C.IFA_F_SECONDARY), tentative: bit(C.IFA_F_TENTATIVE), deprecated: bit(C.IFA_F_DEPRECATED),
      nodad: bit(C.IFA_F_NODAD), noprefixroute: bit(C.IFA_F_NOPREFIXROUTE), dadfailed: bit(C.IFA_F_DADFAILED), optimistic: bit(C.IFA_F_OPTIMISTIC),
      homeaddress: bit(C.IFA_F_HOMEADDRESS), managetempaddr: bit(C.IFA_F_MANAGETEMPADDR), stablePrivacy: bit(C.IFA_F_STABLE_PRIVACY),
    },
    protocol: a.proto ?? null,
    validLifetime: ci === undefined || ci.valid === C.INFINITY_LIFE_TIME ? null : ci.valid,
    preferredLifetime: ci === undefined || ci.preferred === C.INFINITY_LIFE_TIME ? null : ci.preferred,
  };
}

function refRoute(m: codec.RouteMessage, names?: ReadonlyMap<number, string>): Route {
  const a = m.attrs;
  const h = m.header;
  const family = h.family === C.AF_INET6 ? 6 : 4;
  const type = (Object.keys(TYPES) as RouteType[]).find((k) => TYPES[k] === h.type) ?? h.type;
  return {
    family,
    to: h.dstLength === 0 && a.dst === undefined ? 'default' : `${a.dst ?? (family === 6 ? '::' : '0.0.0.0')}/${h.dstLength}`,
    dstLength: h.dstLength,
    table: a.table ?? h.table,
    type,
    protocol: PROTOCOLS[h.protocol] ?? String(h.protocol),
    scope: scopeName(h.scope),
    via: a.gateway ?? null,
    dev: a.oif !== undefined ? (names?.get(a.oif) ?? null) : null,
    devIndex: a.oif ?? null,
    metric: a.priority ?? null,
    src: a.prefsrc ?? null,
    mtu: a.metrics?.mtu ?? null,
    flags: { onlink: !!(h.flags & C.RTNH_F_ONLINK), linkdown: !!(h.flags & C.RTNH_F_LINKDOWN), dead: !!(h.flags & C.RTNH_F_DEAD) },
  };
}

const STATES: Array<[NeighborState, number]> = [
  ['incomplete', C.NUD_INCOMPLETE], ['reachable', C.NUD_REACHABLE], ['stale', C.NUD_STALE], ['delay', C.NUD_DELAY],
  ['probe', C.NUD_PROBE], ['failed', C.NUD_FAILED], ['noarp', C.NUD_NOARP], ['permanent', C.NUD_PERMANENT],
];

function refNeighbor(m: codec.NeighborMessage, names?: ReadonlyMap<number, string>): Neighbor {
  const h = m.header;
  const proxy = !!(h.flags & C.NTF_PROXY);
  const state: NeighborState[] = [];
  for (const [name, bit] of STATES) if (h.state & bit) state.push(name);
  if (!proxy && state.length === 0) state.push('none');
  return {
    family: h.family === C.AF_INET6 ? 6 : 4,
    to: m.attrs.dst ?? '',
    index: h.index,
    dev: names?.get(h.index) ?? null,
    lladdr: m.attrs.lladdr ?? null,
    state,
    proxy,
    router: !!(h.flags & C.NTF_ROUTER),
    protocol: m.attrs.protocol ?? null,
  };
}

// ---------------------------------------------------------------------------------------- sweeps
import { rng } from '../helpers/rng.js';

const fixtures = JSON.parse(readFileSync(new URL('./fixtures/kernel-messages.json', import.meta.url), 'utf8')) as Record<string, unknown>;
const seeds = (kinds: string[]): Buffer[] =>
  kinds.flatMap((k) => (Array.isArray(fixtures[k]) ? (fixtures[k] as Array<{ payload: string }>).map((m) => Buffer.from(m.payload, 'hex')) : []));

type Outcome = { value: unknown } | { error: { message: string; offset: number | undefined } };

function outcome(fn: () => unknown): Outcome {
  try {
    return { value: fn() };
  } catch (err) {
    if (!(err instanceof codec.CodecError)) throw err;
    return { error: { message: err.message, offset: err.offset } };
  }
}

const WORDS = ['veth', 'bridge', 'tun', 'vxlan', 'vlan', 'macvlan', 'bridge_slave', 'eth0', 'br0', 'Ünï', ''];

function bytes(next: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = next() & 0xff;
  return b;
}

/** A payload for an attribute of codec `c`: mostly one that fits, sometimes one of another size. */
function payloadFor(next: () => number, c: ValueCodec<unknown> | undefined, depth: number): Buffer {
  if (next() % 8 === 0) return bytes(next, next() % 20);
  const fixed = new Map<unknown, number[]>([[u8, [1]], [u16, [2]], [be16, [2]], [u32, [4]], [s32, [4]], [u64, [8]], [flag, [0]], [ip, [4, 16]], [in4, [4]], [in6, [16]], [hwaddr, [6, 1]]]);
  const sizes = fixed.get(c);
  if (sizes) return bytes(next, sizes[next() % sizes.length]!);
  if (c === string) {
    const w = WORDS[next() % WORDS.length]!;
    return next() % 6 === 0 ? Buffer.from(w) : Buffer.from(`${w}\0${next() % 5 === 0 ? 'x' : ''}`);
  }
  // nested sets and structs: an attribute list (random small types), or bytes of some size
  return depth < 3 && next() % 2 === 0 ? structured(next, undefined, depth + 1) : bytes(next, [4, 4, 8, 12, 16, next() % 24][next() % 6]!);
}

/**
 * An attribute list made from `schema`: its types (repeated, in any order), payloads mostly of
 * the right size, unknown types, nested lists, and now and then a damaged end.
 */
function structured(next: () => number, schema: Schema | undefined, depth = 0): Buffer {
  const w = new Writer();
  for (let i = next() % 14; i > 0; i--) {
    const type = schema && next() % 5 !== 0 ? schema.fields[next() % schema.fields.length]!.type : next() % 24;
    w.attr(type, payloadFor(next, schema?.table[type]?.codec, depth), next() % 8 === 0 ? 0x8000 : 0);
  }
  const b = w.finish();
  return next() % 12 === 0 && b.length > 0 ? b.subarray(0, b.length - 1 - (next() % Math.min(6, b.length))) : b;
}

/**
 * Runs `check` on every capture of `kinds`, every prefix, 8,000 mutations, 4,000 random attribute
 * lists and 20,000 lists built from `schema`, after a header of `headerLen` bytes.
 */
function sweep(kinds: string[], headerLen: number, schema: Schema, check: (b: Buffer, label: string) => void): number {
  const base = seeds(kinds);
  assert.ok(base.length > 0, `captures of ${kinds.join(', ')}`);
  const next = rng(0x1ea4 + headerLen);
  let n = 0;
  const run = (b: Buffer, label: string) => {
    n++;
    check(b, label);
  };
  for (const s of base) for (let i = 0; i <= s.length; i++) run(s.subarray(0, i), `prefix ${i}`);
  for (let i = 0; i < 8000; i++) {
    const s = Buffer.from(base[next() % base.length]!);
    for (let f = 1 + (next() % 4); f > 0; f--) s[next() % s.length] = next() & 0xff;
    run(s, `mutation ${i}`);
  }
  for (let i = 0; i < 4000; i++) {
    const len = headerLen + (next() % 200);
    const b = Buffer.alloc(len);
    for (let k = 0; k < len; k++) b[k] = next() & 0xff;
    for (let off = headerLen; off + 4 <= len; off += 4 + (next() % 6) * 4) {
      b.writeUInt16LE(next() % 48, off);
      b.writeUInt16LE((next() % 40) | (next() & 0x8000), off + 2);
    }
    run(b, `random ${i}`);
  }
  for (let i = 0; i < 20_000; i++) run(Buffer.concat([bytes(next, headerLen), structured(next, schema)]), `structured ${i}`);
  return n;
}

const same = (a: Outcome, b: Outcome, what: string, buf: Buffer, label: string): void =>
  assert.deepStrictEqual(a, b, `${what} differs on ${label}: ${buf.toString('hex')}`);

/**
 * `read` on `b` placed inside a larger buffer (as a payload in a received datagram: bytes of other
 * messages before and after it), reading `[start, end)` only.
 */
let junkSeed = 1;
function inPlace<T>(b: Buffer, read: (buf: Buffer, start: number, end: number) => T): T {
  const next = rng(junkSeed++);
  const before = bytes(next, next() % 40);
  const buf = Buffer.concat([before, b, bytes(next, 1 + (next() % 40))]);
  return read(buf, before.length, before.length + b.length);
}

test('links: toLink of the lean view equals toLink of the full decode', () => {
  const names = new Map([[1, 'lo'], [2, 'br0'], [3, 'x']]);
  const n = sweep(['links'], 16, linkSchema, (b, label) => {
    const full = outcome(() => toLink(codec.decodeLinkMessage(b), names));
    same(full, outcome(() => toLink(decodeLinkView(b), names)), 'Link', b, label);
    same(full, outcome(() => inPlace(b, (buf, start, end) => toLink(decodeLinkView(buf, start, end), names))), 'Link in place', b, label);
  });
  assert.ok(n > 12_000);
});

test('addresses, routes, neighbours read from the payload equal the conversions of the full decodes', () => {
  const names = new Map([[1, 'lo'], [2, 'br0'], [3, 'x']]);
  type Read = (buf: Buffer, start: number, end: number) => unknown;
  const pairs: Array<[string[], number, Schema, (b: Buffer) => unknown, (b: Buffer) => unknown, Read]> = [
    [['addresses'], 8, addressSchema, (b) => refAddress(codec.decodeAddressMessage(b), names), (b) => toAddress(b, names), (buf, s, e) => readAddress(buf, s, e, names)],
    [['routes4', 'routes6'], 12, routeSchema, (b) => refRoute(codec.decodeRouteMessage(b), names), (b) => toRoute(b, names), (buf, s, e) => readRoute(buf, s, e, names, undefined)],
    [['neighbors', 'proxyNeighbors'], 12, neighborSchema, (b) => refNeighbor(codec.decodeNeighborMessage(b), names), (b) => toNeighbor(b, names), (buf, s, e) => readNeighbor(buf, s, e, names)],
  ];
  for (const [kinds, headerLen, schema, full, lean, read] of pairs) {
    const n = sweep(kinds, headerLen, schema, (b, label) => {
      const expected = outcome(() => full(b));
      same(expected, outcome(() => lean(b)), kinds[0]!, b, label);
      same(expected, outcome(() => inPlace(b, read)), `${kinds[0]!} in place`, b, label);
    });
    assert.ok(n > 12_000);
  }
});

/** `x` without the `other` lists, at every level (Buffers and arrays of them kept). */
function withoutOther(x: unknown): unknown {
  if (x === null || typeof x !== 'object' || Buffer.isBuffer(x) || Array.isArray(x)) return x;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(x)) if (k !== 'other') out[k] = withoutOther(v);
  return out;
}

test('lean attribute decoding: the same fields as the full decode, without `other`, the same errors', () => {
  sweep(['links'], 16, linkSchema, (b, label) => {
    same(
      outcome(() => withoutOther(decodeAttrs(linkSchema, b, 16))),
      outcome(() => decodeAttrs(linkSchema, b, 16, b.length, true)),
      'fields',
      b,
      label,
    );
  });
});
