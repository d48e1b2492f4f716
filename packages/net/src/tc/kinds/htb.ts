/**
 * htb, the hierarchical token bucket: the qdisc (`struct tc_htb_glob`: default class, r2q) and its
 * classes (`struct tc_htb_opt`: rate, ceil, bursts in scheduler ticks, quantum, prio), with the rate
 * tables TCA_HTB_RTAB/CTAB and the 64-bit rates, encoded in the order iproute2's tc sends them.
 * @module
 */
import { binary, nested, schema, u32, u64, type WithOther } from '../../codec/attrs.js';
import * as T from '../../codec/tc-constants.js';
import { ValidationError } from '../../errors.js';
import { validateInt } from '../../validate.js';
import { formatHandle, majorOf, parseHandle } from '../handle.js';
import { bytesPerSecond, parseRate, rateTable, readRateSpec, writeRateSpec, xmitSize, xmitTime, type RateSpec } from '../rate.js';
import type { HtbClassSpec, HtbQdiscSpec } from '../types.js';
import { structCodec, type TcKind } from './kind.js';

/** `struct tc_htb_opt`: a class's parameters (times in scheduler ticks). */
export interface HtbParms {
  rate: RateSpec;
  ceil: RateSpec;
  buffer: number;
  cbuffer: number;
  quantum: number;
  /** Out only: the class's level (0 = leaf). */
  level: number;
  prio: number;
}

/** `struct tc_htb_glob`: the qdisc's parameters. */
export interface HtbGlob {
  version: number;
  rate2quantum: number;
  /** The default class's minor number (0: none). */
  defcls: number;
  debug: number;
  /** Out only: packets sent unclassified. */
  directPkts: number;
}

/** htb: TCA_OPTIONS (TCA_HTB_*). */
export interface HtbOptions extends WithOther {
  rate64?: bigint;
  ceil64?: bigint;
  parms?: HtbParms;
  init?: HtbGlob;
  rtab?: Buffer;
  ctab?: Buffer;
  directQlen?: number;
}

const parmsCodec = structCodec<HtbParms>(
  44,
  (b) => ({
    rate: readRateSpec(b, 0),
    ceil: readRateSpec(b, 12),
    buffer: b.readUInt32LE(24),
    cbuffer: b.readUInt32LE(28),
    quantum: b.readUInt32LE(32),
    level: b.readUInt32LE(36),
    prio: b.readUInt32LE(40),
  }),
  (b, v) => {
    writeRateSpec(b, 0, v.rate);
    writeRateSpec(b, 12, v.ceil);
    [v.buffer, v.cbuffer, v.quantum, v.level, v.prio].forEach((x, i) => b.writeUInt32LE(x >>> 0, 24 + i * 4));
  },
);

const globKeys = ['version', 'rate2quantum', 'defcls', 'debug', 'directPkts'] as const;
const globCodec = structCodec<HtbGlob>(
  20,
  (b) => Object.fromEntries(globKeys.map((k, i) => [k, b.readUInt32LE(i * 4)])) as unknown as HtbGlob,
  (b, v) => globKeys.forEach((k, i) => b.writeUInt32LE(v[k] >>> 0, i * 4)),
);

/** TCA_HTB_*, in the order tc writes them. */
const htbSchema = schema('htb', [
  [T.TCA_HTB_RATE64, 'rate64', u64],
  [T.TCA_HTB_CEIL64, 'ceil64', u64],
  [T.TCA_HTB_PARMS, 'parms', parmsCodec],
  [T.TCA_HTB_INIT, 'init', globCodec],
  [T.TCA_HTB_RTAB, 'rtab', binary],
  [T.TCA_HTB_CTAB, 'ctab', binary],
  [T.TCA_HTB_DIRECT_QLEN, 'directQlen', u32],
]);

/** tc's default packet size for HTB's rate tables and bursts. */
const HTB_MTU = 1600;

/** The default class's minor number from `'1:20'` (its major must be the qdisc's) or a number. */
function defaultMinor(s: HtbQdiscSpec): number {
  const v = s.defaultClass;
  if (v === undefined) return 0;
  if (typeof v === 'number') {
    validateInt(v, 'defaultClass', 0, 0xffff);
    return v;
  }
  const h = parseHandle(v, 'defaultClass', 'class');
  if (s.handle !== undefined && majorOf(h) !== majorOf(parseHandle(s.handle, 'handle', 'qdisc'))) {
    throw new ValidationError('defaultClass', v, `must be a class of this qdisc (${s.handle})`);
  }
  return h & 0xffff;
}

function checkSize(v: unknown, field: string): void {
  if (v !== undefined) validateInt(v, field, 1, 0xffffffff);
}

const rate64 = (spec: RateSpec, wide: bigint | undefined): number => (wide !== undefined ? Number(wide) : spec.rate);

export const htb: TcKind<HtbOptions> = {
  kinds: ['htb'],
  options: nested<HtbOptions>(htbSchema, false),
  qdisc: {
    validate(spec) {
      const s = spec as HtbQdiscSpec;
      defaultMinor(s);
      if (s.r2q !== undefined) validateInt(s.r2q, 'r2q', 1, 0xffffffff);
      if (s.directQlen !== undefined) validateInt(s.directQlen, 'directQlen', 0, 0xffffffff);
    },
    encode(spec) {
      const s = spec as HtbQdiscSpec;
      const o: HtbOptions = {
        init: { version: T.TC_HTB_PROTOVER, rate2quantum: s.r2q ?? 10, defcls: defaultMinor(s), debug: 0, directPkts: 0 },
      };
      if (s.directQlen !== undefined) o.directQlen = s.directQlen;
      return o;
    },
    decode(d, handle) {
      const g = d?.init;
      if (!g) return {};
      return {
        htb: {
          defaultClass: g.defcls === 0 ? null : formatHandle(((majorOf(handle) << 16) | g.defcls) >>> 0),
          r2q: g.rate2quantum,
          directQlen: d?.directQlen ?? null,
          directPackets: g.directPkts,
          version: `${g.version >>> 16}.${g.version & 0xffff}`,
        },
      };
    },
  },
  class: {
    validate(spec) {
      const s = spec as HtbClassSpec;
      parseRate(s.rate, 'rate');
      if (s.ceil !== undefined && parseRate(s.ceil, 'ceil') < parseRate(s.rate, 'rate')) {
        throw new ValidationError('ceil', s.ceil, 'must not be below rate');
      }
      checkSize(s.burst, 'burst');
      checkSize(s.cburst, 'cburst');
      checkSize(s.quantum, 'quantum');
      if (s.prio !== undefined) validateInt(s.prio, 'prio', 0, T.TC_HTB_NUMPRIO - 1);
      if (s.mtu !== undefined) validateInt(s.mtu, 'mtu', 68, 65535);
      if (s.mpu !== undefined) validateInt(s.mpu, 'mpu', 0, 65535);
      if (s.overhead !== undefined) validateInt(s.overhead, 'overhead', 0, 65535);
    },
    encode(spec, ps) {
      const s = spec as HtbClassSpec;
      const rate = bytesPerSecond(parseRate(s.rate, 'rate'));
      const ceil = s.ceil === undefined ? rate : bytesPerSecond(parseRate(s.ceil, 'ceil'));
      const mtu = s.mtu ?? HTB_MTU;
      const tab = { mtu, mpu: s.mpu ?? 0, overhead: s.overhead ?? 0 };
      // tc's defaults: the bytes sent in one clock tick plus one packet.
      const buffer = s.burst ?? Math.floor(rate / ps.hz) + mtu;
      const cbuffer = s.cburst ?? Math.floor(ceil / ps.hz) + mtu;
      const r = rateTable(rate, tab, ps);
      const c = rateTable(ceil, tab, ps);
      const o: HtbOptions = {};
      if (rate >= 2 ** 32) o.rate64 = BigInt(rate);
      if (ceil >= 2 ** 32) o.ceil64 = BigInt(ceil);
      o.parms = {
        rate: r.spec,
        ceil: c.spec,
        buffer: xmitTime(rate, buffer, ps),
        cbuffer: xmitTime(ceil, cbuffer, ps),
        quantum: s.quantum ?? 0,
        level: 0,
        prio: s.prio ?? 0,
      };
      o.rtab = r.table;
      o.ctab = c.table;
      return o;
    },
    decode(d, ps) {
      const p = d?.parms;
      if (!p) return {};
      const rate = rate64(p.rate, d?.rate64);
      const ceil = rate64(p.ceil, d?.ceil64);
      return {
        htb: {
          rate: rate * 8,
          ceil: ceil * 8,
          burst: xmitSize(rate, p.buffer, ps),
          cburst: xmitSize(ceil, p.cbuffer, ps),
          quantum: p.quantum,
          prio: p.prio,
          level: p.level,
        },
      };
    },
  },
};
