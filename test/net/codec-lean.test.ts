// The fast paths of the list operations against the full decoders they replace: for every kernel
// capture, every prefix of it, thousands of mutated captures and random attribute lists, the
// public object made from the lean decode equals (deepStrictEqual) the one made from the full
// decode, or both throw the same CodecError (message and offset).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { codec } from '@vmhost/net';
import { decodeAttrs } from '../../packages/net/src/codec/attrs.js';
import { linkSchema } from '../../packages/net/src/codec/link.js';
import { decodeLinkView, toLink } from '../../packages/net/src/links/link.js';
import { decodeAddressView, toAddress } from '../../packages/net/src/addresses.js';
import { decodeRouteView, toRoute } from '../../packages/net/src/routes.js';
import { decodeNeighborView, toNeighbor } from '../../packages/net/src/neighbors.js';
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

/** Runs `check` on every capture of `kinds`, every prefix, 8,000 mutations and 4,000 random attribute lists after a header of `headerLen` bytes. */
function sweep(kinds: string[], headerLen: number, check: (b: Buffer, label: string) => void): number {
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
  return n;
}

const same = (a: Outcome, b: Outcome, what: string, buf: Buffer, label: string): void =>
  assert.deepStrictEqual(a, b, `${what} differs on ${label}: ${buf.toString('hex')}`);

test('links: toLink of the lean view equals toLink of the full decode', () => {
  const names = new Map([[1, 'lo'], [2, 'br0'], [3, 'x']]);
  const n = sweep(['links'], 16, (b, label) => {
    same(outcome(() => toLink(codec.decodeLinkMessage(b), names)), outcome(() => toLink(decodeLinkView(b), names)), 'Link', b, label);
  });
  assert.ok(n > 12_000);
});

test('addresses, routes, neighbours: the public objects of the lean views equal those of the full decodes', () => {
  const names = new Map([[1, 'lo'], [2, 'br0'], [3, 'x']]);
  const pairs: Array<[string[], number, (b: Buffer) => unknown, (b: Buffer) => unknown]> = [
    [['addresses'], 8, (b) => toAddress(codec.decodeAddressMessage(b), names), (b) => toAddress(decodeAddressView(b), names)],
    [['routes4', 'routes6'], 12, (b) => toRoute(codec.decodeRouteMessage(b), names), (b) => toRoute(decodeRouteView(b), names)],
    [['neighbors', 'proxyNeighbors'], 12, (b) => toNeighbor(codec.decodeNeighborMessage(b), names), (b) => toNeighbor(decodeNeighborView(b), names)],
  ];
  for (const [kinds, headerLen, full, lean] of pairs) {
    const n = sweep(kinds, headerLen, (b, label) => same(outcome(() => full(b)), outcome(() => lean(b)), kinds[0]!, b, label));
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
  sweep(['links'], 16, (b, label) => {
    same(
      outcome(() => withoutOther(decodeAttrs(linkSchema, b, 16))),
      outcome(() => decodeAttrs(linkSchema, b, 16, b.length, true)),
      'fields',
      b,
      label,
    );
  });
});
