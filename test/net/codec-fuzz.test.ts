// Fuzz-style test of every decoder: at least 100,000 random, truncated and bit-flipped buffers.
// Each must give a result or a CodecError: never another exception, a crash or a hang.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { codec } from '@vmhost/net';
import { rng } from '../helpers/rng.js';

const fixtures = JSON.parse(readFileSync(new URL('./fixtures/kernel-messages.json', import.meta.url), 'utf8')) as Record<string, unknown>;
const seeds: Buffer[] = [];
for (const v of Object.values(fixtures)) {
  if (Array.isArray(v)) for (const m of v as Array<{ payload: string }>) seeds.push(Buffer.from(m.payload, 'hex'));
}


const decoders: Array<[string, (b: Buffer) => unknown]> = [
  ['link', codec.decodeLinkMessage],
  ['address', codec.decodeAddressMessage],
  ['route', codec.decodeRouteMessage],
  ['neighbor', codec.decodeNeighborMessage],
  ['dispatch', (b) => codec.decodeRtnlMessage(16 + (b.length % 16), b)],
];

test('fuzz: 100,000+ random, truncated and mutated buffers through every decoder', () => {
  const next = rng(0x5eed1234);
  let cases = 0;
  let ok = 0;
  let typed = 0;
  const run = (b: Buffer, label: string) => {
    for (const [name, dec] of decoders) {
      cases++;
      try {
        dec(b);
        ok++;
      } catch (err) {
        if (!(err instanceof codec.CodecError)) {
          assert.fail(`${name} decoder threw ${String(err)} on ${label}: ${b.toString('hex')}`);
        }
        typed++;
      }
    }
  };
  // 1. Every prefix of every kernel capture.
  for (const s of seeds) for (let n = 0; n <= s.length; n++) run(s.subarray(0, n), `prefix ${n}`);
  // 2. Captures with random bytes overwritten (lengths and types get mangled).
  for (let i = 0; i < 8000; i++) {
    const s = Buffer.from(seeds[next() % seeds.length]!);
    const flips = 1 + (next() % 4);
    for (let f = 0; f < flips; f++) s[next() % s.length] = next() & 0xff;
    run(s, `mutation ${i}`);
  }
  // 3. Random buffers built from plausible attribute headers (random lengths, nested types).
  for (let i = 0; i < 6000; i++) {
    const len = next() % 160;
    const b = Buffer.alloc(len);
    for (let k = 0; k < len; k++) b[k] = next() & 0xff;
    for (let off = 16; off + 4 <= len; off += 4 + ((next() % 5) * 4)) {
      b.writeUInt16LE(next() % 40, off);
      b.writeUInt16LE((next() % 60) | (next() & 0x8000), off + 2);
    }
    run(b, `random ${i}`);
  }
  assert.ok(cases >= 100_000, `only ${cases} cases`);
  assert.ok(ok > 1000 && typed > 1000, `both outcomes must occur (ok ${ok}, typed errors ${typed})`);
});
