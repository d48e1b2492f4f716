// The ip module (packages/net/src/ip/): fixed cases, and property tests against Node's own
// implementations: net.BlockList (subnet membership), net.isIP (what parses) and the WHATWG URL
// serializer (RFC 5952-style IPv6 text). Random cases come from the repo's seeded rng; the seed is
// new every run (or VMHOST_SEED=N to replay) and printed with any failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockList, isIP } from 'node:net';
import { ip, ValidationError, type Prefix } from '@vmhost/net';
import { rng } from '../helpers/rng.js';

const SEED = Number(process.env.VMHOST_SEED ?? Math.floor(Math.random() * 0xffffffff)) >>> 0;
const next = rng(SEED);
const at = (what: string): string => `${what} (seed ${SEED}: VMHOST_SEED=${SEED} replays it)`;
const CASES = 4000;

function randomBytes(family: 4 | 6): Uint8Array {
  const b = new Uint8Array(family === 4 ? 4 : 16);
  for (let i = 0; i < b.length; i++) b[i] = next() & 0xff;
  // Many zero groups, so that compression, mapped and compatible forms come up often.
  if (family === 6 && next() % 2) for (let i = 0; i < 16; i += 2) if (next() % 3 === 0) b[i] = b[i + 1] = 0;
  if (family === 6 && next() % 8 === 0) {
    b.fill(0, 0, 10);
    b[10] = b[11] = next() % 2 ? 0xff : 0;
  }
  return b;
}
const randomFamily = (): 4 | 6 => (next() % 2 ? 4 : 6);
function randomPrefix(family = randomFamily()): Prefix {
  const max = family === 4 ? 32 : 128;
  return ip.makePrefix(randomBytes(family), next() % (max + 1));
}
/** An address near `p`: inside it, or with one bit of its network part flipped. */
function near(p: Prefix): string {
  const host = BigInt(next()) * BigInt(next());
  const n = ip.size(p);
  const inside = ip.nth(p, host % n);
  if (next() % 2 || p.prefixLength === 0) return inside;
  const bit = next() % p.prefixLength;
  const out = ip.parseAddress(inside);
  out[bit >> 3] = out[bit >> 3]! ^ (0x80 >> (bit & 7));
  return ip.formatAddress(out);
}
function blockListOf(p: Prefix): BlockList {
  const bl = new BlockList();
  bl.addSubnet(ip.networkAddress(p), p.prefixLength, p.family === 4 ? 'ipv4' : 'ipv6');
  return bl;
}
const big = (a: string): bigint => ip.parseAddress(a).reduce((v, x) => (v << 8n) | BigInt(x), 0n);
const type = (a: string): 'ipv4' | 'ipv6' => (isIP(a) === 4 ? 'ipv4' : 'ipv6');
const expand = (b: Uint8Array): string =>
  b.length === 4 ? b.join('.') : Array.from({ length: 8 }, (_, i) => ((b[2 * i]! << 8) | b[2 * i + 1]!).toString(16).padStart(4, '0')).join(':');

test('fixed cases: parse, canonical text, iptables text, mask, nth, host checks', () => {
  const p = ip.parsePrefix('192.168.0.7/24');
  assert.deepEqual(p, { family: 4, address: '192.168.0.7', prefixLength: 24, cidr: '192.168.0.7/24', network: '192.168.0.0/24' });
  assert.deepEqual(ip.parsePrefix('2001:DB8:0:0::1/64'), { family: 6, address: '2001:db8::1', prefixLength: 64, cidr: '2001:db8::1/64', network: '2001:db8::/64' });
  assert.equal(ip.parsePrefix('10.1.2.3', { bare: true }).cidr, '10.1.2.3/32');
  assert.equal(ip.nth('192.168.0.0/24', 100), '192.168.0.100');
  assert.equal(ip.nth('2001:db8::/64', 0x100), '2001:db8::100');
  assert.equal(ip.nth('192.168.0.0/24', -1), '192.168.0.255');
  assert.throws(() => ip.nth('192.168.0.0/24', 256), RangeError);
  assert.equal(ip.netmask(4, 24), '255.255.255.0');
  assert.equal(ip.netmask(6, 64), 'ffff:ffff:ffff:ffff::');
  assert.equal(ip.netmask(4, 0), '0.0.0.0');
  assert.equal(ip.lastAddress('10.0.0.0/8'), '10.255.255.255');
  assert.equal(ip.size('2001:db8::/64'), 1n << 64n);
  assert.ok(ip.contains('2001:db8::/32', '2001:db8:1::/48'));
  assert.ok(!ip.contains('2001:db8:1::/48', '2001:db8::/32'));
  assert.ok(!ip.contains('10.0.0.0/8', '2001:db8::1'));
  assert.ok(ip.overlaps('10.0.0.0/8', '10.1.0.0/16') && !ip.overlaps('10.0.0.0/16', '10.1.0.0/16'));
  for (const [c, host] of [['192.168.0.0/24', false], ['192.168.0.255/24', false], ['192.168.0.1/24', true], ['10.0.0.0/31', true], ['10.0.0.1/32', true], ['2001:db8::/64', false], ['2001:db8::ffff:ffff:ffff:ffff/64', true], ['2001:db8::/127', true]] as const) {
    assert.equal(ip.isHostAddress(c), host, c);
  }
  for (const [input, want] of <Array<[string, string]>>[['::102:304', '::1.2.3.4/128'], ['::2', '::2/128'], ['::ffff:0:0/96', '::ffff:0.0.0.0/96'], ['1:0:0:1::1/64', '1:0:0:1::/64'], ['2001:db8:1:2:3:4:5:6/48', '2001:db8:1::/48']]) {
    assert.equal(ip.iptablesText(input), want, input);
  }
  assert.equal(ip.canonicalAddress('::102:304'), '::102:304', 'RFC 5952 keeps an IPv4-compatible address in hex');
  assert.equal(ip.canonicalAddress('::ffff:c000:201'), '::ffff:192.0.2.1');
  assert.equal(ip.canonicalAddress('1:0:0:2:0:0:0:3'), '1:0:0:2::3');
  for (const bad of ['10.0.0.1/33', '10.0.0.1/', '10.0.0.1/a', '2001:db8::/129', 'fe80::1%eth0/64', '01.2.3.4/8', 'x/8', 42, null]) {
    assert.throws(() => ip.parsePrefix(bad, { field: 'lan' }), (e: unknown) => e instanceof ValidationError && e.field === 'lan', String(bad));
  }
  assert.throws(() => ip.parsePrefix('10.0.0.1'), /missing \/PREFIXLEN/);
  assert.throws(() => ip.parsePrefix('10.0.0.1/8', { network: true }), /host bits set; the network is 10\.0\.0\.0\/8/);
  assert.throws(() => ip.parsePrefix('10.0.0.0/8', { family: 6 }), ValidationError);
});

test(`property: contains agrees with net.BlockList (${CASES} random prefixes and addresses)`, () => {
  for (let i = 0; i < CASES; i++) {
    const p = randomPrefix();
    const bl = blockListOf(p);
    const a = near(p);
    assert.equal(ip.contains(p, a), bl.check(a, type(a)), at(`contains(${p.cidr}, ${a})`));
    assert.ok(bl.check(ip.networkAddress(p), type(a)) && bl.check(ip.lastAddress(p), type(a)), at(`first and last of ${p.cidr}`));
    // A prefix from the other family is never contained.
    assert.equal(ip.contains(p, p.family === 4 ? '::1' : '127.0.0.1'), false);
  }
});

test(`property: overlaps, nth and the network agree with net.BlockList (${CASES} cases)`, () => {
  for (let i = 0; i < CASES; i++) {
    const fam = randomFamily();
    const a = randomPrefix(fam);
    // b: often a sub- or super-prefix of a, sometimes unrelated.
    const b = next() % 3 ? ip.makePrefix(ip.parseAddress(near(a)), next() % (fam === 4 ? 33 : 129)) : randomPrefix(fam);
    const oracle = blockListOf(a).check(ip.networkAddress(b), type(ip.networkAddress(b))) || blockListOf(b).check(ip.networkAddress(a), type(ip.networkAddress(a)));
    assert.equal(ip.overlaps(a, b), oracle, at(`overlaps(${a.cidr}, ${b.cidr})`));
    assert.equal(ip.overlaps(b, a), oracle, at('overlaps is symmetric'));
    assert.equal(ip.contains(a, b) || ip.contains(b, a), oracle, at('overlapping prefixes nest'));
    // nth: inside, in order, and only inside.
    const n = ip.size(a);
    const k = (BigInt(next()) * BigInt(next())) % n;
    const x = ip.nth(a, k);
    assert.ok(blockListOf(a).check(x, type(x)), at(`nth(${a.cidr}, ${k})`));
    if (k + 1n < n) assert.equal(big(ip.nth(a, k + 1n)) - big(x), 1n, at('nth steps by one'));
    assert.equal(ip.nth(a, 0), ip.networkAddress(a));
    assert.equal(ip.nth(a, -1), ip.lastAddress(a));
    assert.throws(() => ip.nth(a, n), RangeError);
    // The network text: host bits cleared, same length, and a fixed point.
    assert.equal(ip.parsePrefix(a.network).network, a.network);
    assert.equal(a.network, `${ip.networkAddress(a)}/${a.prefixLength}`);
  }
});

test(`property: text round-trips; what isIP accepts parses; IPv6 text is what the URL serializer writes (${CASES} cases)`, () => {
  for (let i = 0; i < CASES; i++) {
    const fam = randomFamily();
    const b = randomBytes(fam);
    const text = ip.formatAddress(b);
    assert.equal(isIP(text), fam, at(`isIP(${text})`));
    assert.deepEqual(ip.parseAddress(text), b, at(`parse(format(${expand(b)}))`));
    assert.deepEqual(ip.parseAddress(expand(b)), b, at(`parse(${expand(b)})`));
    assert.equal(ip.canonicalAddress(expand(b).toUpperCase()), text, at(`canonical(${expand(b)})`));
    const t2 = ip.formatAddressInetNtop(b);
    assert.deepEqual(ip.parseAddress(t2), b, at(`parse(inet_ntop text ${t2})`));
    const bl = new BlockList();
    bl.addAddress(expand(b), fam === 4 ? 'ipv4' : 'ipv6');
    assert.ok(bl.check(text, fam === 4 ? 'ipv4' : 'ipv6'), at(`BlockList sees ${text} as ${expand(b)}`));
    if (fam === 6) {
      const url = new URL(`http://[${expand(b)}]/`).hostname.slice(1, -1);
      const dotted = /\./.test(text);
      // The URL serializer never writes a dotted tail; otherwise it compresses as RFC 5952 does.
      if (!dotted) assert.equal(text, url, at(`RFC 5952 text of ${expand(b)}`));
      else assert.deepEqual(ip.parseAddress(url), b);
    }
  }
});

test(`property: what parses is exactly what isIP accepts (no zone), as the address BlockList sees (${CASES * 4} mangled texts)`, () => {
  const ALPHABET = ':.0123456789abcdefABCDEFg% ';
  const texts = ['::', '1::', '::1.2.3.4', '1:2:3:4:5:6:7::', '::1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8::', '1:2:3:4:5::1.2.3.4', '1:2:3:4:5:6::1.2.3.4', '1:2:3:4:5:6:1.2.3.4',
    '1:2:3:4:5:6:7:1.2.3.4', ':::', '1:::2', ':1::', '1::2::3', '01.2.3.4', '1.2.3.04', '1.2.3', '1.2.3.4.5', '256.1.1.1', '::ffff:1.2.3.04', '12345::', '0000:0::', '', ':', '.'];
  for (let i = 0; i < CASES; i++) {
    const b = randomBytes(randomFamily());
    const forms = [ip.formatAddress(b), expand(b), ip.formatAddressInetNtop(b)];
    let s = forms[next() % forms.length]!;
    // one to three edits: delete, insert or replace a character, or cut the end
    for (let k = 0, n = 1 + (next() % 3); k < n; k++) {
      const at = next() % (s.length + 1);
      const c = ALPHABET[next() % ALPHABET.length]!;
      const edit = next() % 4;
      s = edit === 0 ? s.slice(0, at) + s.slice(at + 1) : edit === 1 ? s.slice(0, at) + c + s.slice(at) : edit === 2 ? s.slice(0, at) + c + s.slice(at + 1) : s.slice(0, at);
    }
    texts.push(s, s.toUpperCase(), `${s}::`, `::${s}`);
  }
  for (const s of texts) {
    const fam = s.includes('%') ? 0 : isIP(s);
    let bytes: Uint8Array | undefined;
    try {
      bytes = ip.parseAddress(s);
    } catch (e) {
      assert.ok(e instanceof ValidationError, at(`${s}: ${String(e)}`));
    }
    assert.equal(bytes === undefined ? 0 : bytes.length === 4 ? 4 : 6, fam, at(`parseAddress(${JSON.stringify(s)}) against isIP`));
    if (bytes !== undefined) {
      const bl = new BlockList();
      bl.addAddress(s, fam === 4 ? 'ipv4' : 'ipv6');
      assert.ok(bl.check(ip.formatAddress(bytes), fam === 4 ? 'ipv4' : 'ipv6'), at(`${s} parsed to ${ip.formatAddress(bytes)}`));
    }
  }
});

test('compare orders addresses by value; specialRange names the special-purpose range', () => {
  assert.equal(ip.compare('10.0.0.2', '10.0.0.10'), -8);
  assert.equal(ip.compare('2001:DB8::1', '2001:db8:0::1'), 0);
  assert.ok(ip.compare('255.255.255.255', '::') < 0, 'IPv4 before IPv6');
  assert.throws(() => ip.compare('10.0.0.1', 'x'), ValidationError);
  for (const [a, kind] of <Array<[string, string | undefined]>>[
    ['0.0.0.0', 'unspecified'], ['0.1.2.3', 'unspecified'], ['127.0.0.53', 'loopback'], ['169.254.1.1', 'link-local'], ['224.0.0.1', 'multicast'],
    ['239.255.255.255', 'multicast'], ['255.255.255.255', 'broadcast'], ['240.0.0.1', 'reserved'], ['255.255.255.254', 'reserved'],
    ['::', 'unspecified'], ['::1', 'loopback'], ['::ffff:192.0.2.1', 'ipv4-mapped'], ['fe80::1', 'link-local'], ['febf::1', 'link-local'], ['ff02::1', 'multicast'],
    ['1.0.0.0', undefined], ['126.255.255.255', undefined], ['192.168.0.1', undefined], ['203.0.113.7', undefined], ['223.255.255.255', undefined],
    ['::2', undefined], ['fec0::1', undefined], ['fd00::1', undefined], ['2001:db8::1', undefined],
    ['169.0.0.0/8', 'link-local'], ['0.0.0.0/0', 'unspecified'], ['192.168.0.0/16', undefined], ['::/0', 'unspecified'], ['2000::/3', undefined], ['fe00::/7', 'link-local'],
  ]) {
    assert.equal(ip.specialRange(a)?.kind, kind, a);
  }
  assert.deepEqual(ip.specialRange('127.0.0.1'), { kind: 'loopback', range: '127.0.0.0/8' });
});

test(`property: compare agrees with the addresses' integer order (${CASES} pairs)`, () => {
  for (let i = 0; i < CASES; i++) {
    const f = randomFamily();
    const a = ip.formatAddress(randomBytes(f));
    const b = next() % 4 === 0 ? a : ip.formatAddress(randomBytes(f));
    const want = Math.sign(Number(big(a) - big(b)));
    assert.equal(Math.sign(ip.compare(a, b)), want, at(`${a} vs ${b}`));
    assert.equal(Math.sign(ip.compare(b, a)), want === 0 ? 0 : -want, at(`${b} vs ${a}`));
  }
});

test('parsing the same text again (the kept parses) gives fresh results and checks the options as the first time', () => {
  const a = ip.parseAddress('2001:db8::7');
  a[15] = 0xff; // a caller's change to its bytes is its own
  assert.deepEqual([...ip.parseAddress('2001:db8::7')].slice(14), [0, 7]);
  assert.throws(() => ip.parseAddress('2001:db8::7', 'addr', 4), (e: unknown) => e instanceof ValidationError && e.field === 'addr');
  assert.equal(ip.parseAddress('192.0.2.9', 'a', 4).length, 4);
  const p = ip.parsePrefix('192.0.2.9/24');
  (p as { cidr: string }).cidr = 'changed';
  assert.equal(ip.parsePrefix('192.0.2.9/24').cidr, '192.0.2.9/24');
  // options on a text parsed before: each refused as it would be the first time
  assert.throws(() => ip.parsePrefix('192.0.2.9/24', { network: true }), /host bits set; the network is 192\.0\.2\.0\/24/);
  assert.throws(() => ip.parsePrefix('192.0.2.9/24', { family: 6, field: 'f' }), (e: unknown) => e instanceof ValidationError && e.field === 'f');
  ip.parsePrefix('192.0.2.10', { bare: true });
  assert.throws(() => ip.parsePrefix('192.0.2.10'), /missing \/PREFIXLEN/);
  assert.equal(ip.parsePrefix('192.0.2.0/24', { network: true }).network, '192.0.2.0/24');
  // bad text is refused every time (failures are not kept)
  for (let i = 0; i < 2; i++) assert.throws(() => ip.parseAddress('192.0.2.300'), ValidationError);
});
