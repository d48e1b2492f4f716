/**
 * Rates, sizes and times of traffic control, as iproute2's tc computes them (tc/tc_core.c): rate
 * text, the packet scheduler's clock (`/proc/net/psched`), transmission times in scheduler ticks,
 * `struct tc_ratespec` and the 256-entry rate tables (tc_calc_rtable). Pure.
 * @module
 */
import { CodecError } from '../codec/attrs.js';
import * as T from '../codec/tc-constants.js';
import { ValidationError } from '../errors.js';

/** The packet scheduler's clock, as tc reads it from /proc/net/psched. */
export interface Psched {
  /** Scheduler ticks per microsecond (1000/64 = 15.625: a tick is 64 ns since Linux 2.6.31). */
  tickInUsec: number;
  /** tc's "HZ" for default bursts (get_hz(): the clock resolution, 1e9 with high-resolution timers). */
  hz: number;
}

/** What /proc/net/psched says on kernels with high-resolution timers (every kernel vmhost runs on). */
export const DEFAULT_PSCHED: Psched = { tickInUsec: 1000 / 64, hz: 1e9 };

/**
 * Parses the text of /proc/net/psched (`t2us us2t clock_res hz`, hex) as tc_core_init and get_hz
 * do; undefined when it does not look like one.
 */
export function parsePsched(text: string): Psched | undefined {
  const m = /^\s*([0-9a-f]{8})\s+([0-9a-f]{8})\s+([0-9a-f]{8})\s+([0-9a-f]{8})\s*$/i.exec(text);
  if (!m) return undefined;
  let t2us = parseInt(m[1]!, 16);
  const us2t = parseInt(m[2]!, 16);
  const clockRes = parseInt(m[3]!, 16);
  const nom = parseInt(m[3]!, 16);
  const denom = parseInt(m[4]!, 16);
  if (us2t === 0 || clockRes === 0) return undefined;
  // tc's compatibility rule: a nanosecond clock advertises a multiplier of 1000 that really is 1.
  if (clockRes === 1e9) t2us = us2t;
  const tickInUsec = (t2us / us2t) * (clockRes / 1e6);
  return { tickInUsec, hz: nom === 1e6 && denom > 0 ? denom : DEFAULT_PSCHED.hz };
}

const U32_MAX = 0xffffffff;
const toU32 = (x: number): number => (x >= U32_MAX ? U32_MAX : x <= 0 ? 0 : Math.trunc(x));

/** Ticks needed to send `size` bytes at `rate` bytes/s (tc_calc_xmittime; C's double → unsigned truncations kept). */
export function xmitTime(rate: number, size: number, ps: Psched = DEFAULT_PSCHED): number {
  const usec = toU32(1e6 * (size / rate)); // in this order, as tc computes it (the rounding differs otherwise)
  return toU32(usec * ps.tickInUsec);
}

/** Bytes sent in `ticks` at `rate` bytes/s (tc_calc_xmitsize: what tc prints as a burst). */
export function xmitSize(rate: number, ticks: number, ps: Psched = DEFAULT_PSCHED): number {
  const usec = toU32(ticks / ps.tickInUsec);
  return Math.floor((rate * usec) / 1e6);
}

/** Microseconds in `ticks` (tc_core_tick2time). */
export function ticksToUsec(ticks: number, ps: Psched = DEFAULT_PSCHED): number {
  return toU32(ticks / ps.tickInUsec);
}

/** `struct tc_ratespec`. */
export interface RateSpec {
  cellLog: number;
  /** TC_LINKLAYER_*. */
  linklayer: number;
  overhead: number;
  cellAlign: number;
  mpu: number;
  /** Bytes per second, capped at 2^32-1 (the full rate goes in a separate 64-bit attribute). */
  rate: number;
}

/** Encodes a `struct tc_ratespec` (12 bytes) into `b` at `off`. */
export function writeRateSpec(b: Buffer, off: number, r: RateSpec): void {
  b.writeUInt8(r.cellLog & 0xff, off);
  b.writeUInt8(r.linklayer & 0xff, off + 1);
  b.writeUInt16LE(r.overhead & 0xffff, off + 2);
  b.writeInt16LE(r.cellAlign, off + 4);
  b.writeUInt16LE(r.mpu & 0xffff, off + 6);
  b.writeUInt32LE(r.rate >>> 0, off + 8);
}

/** Decodes a `struct tc_ratespec` at `off`. */
export function readRateSpec(b: Buffer, off: number): RateSpec {
  if (b.length - off < T.TC_RATESPEC_LEN) throw new CodecError('tc_ratespec truncated', off);
  return {
    cellLog: b.readUInt8(off),
    linklayer: b.readUInt8(off + 1),
    overhead: b.readUInt16LE(off + 2),
    cellAlign: b.readInt16LE(off + 4),
    mpu: b.readUInt16LE(off + 6),
    rate: b.readUInt32LE(off + 8),
  };
}

/**
 * The rate table of `rate` (tc_calc_rtable, Ethernet link layer): entry i is the time, in ticks,
 * to send a packet of (i+1) << cellLog bytes (at least `mpu`). `cellLog` is derived from `mtu`
 * (2047 when 0) unless given. Returns the 1024-byte table and the ratespec fields it implies.
 */
export function rateTable(
  rate: number,
  options: { mtu?: number; mpu?: number; cellLog?: number; overhead?: number } = {},
  ps: Psched = DEFAULT_PSCHED,
): { table: Buffer; spec: RateSpec } {
  const mtu = options.mtu || 2047;
  const mpu = options.mpu ?? 0;
  let cellLog = options.cellLog ?? -1;
  if (cellLog < 0) {
    cellLog = 0;
    while (mtu >> cellLog > 255) cellLog++;
  }
  const capped = rate >= 2 ** 32 ? U32_MAX : rate;
  const table = Buffer.alloc(T.TC_RTAB_SIZE);
  for (let i = 0; i < 256; i++) {
    const sz = Math.max((i + 1) << cellLog, mpu);
    table.writeUInt32LE(xmitTime(capped, sz, ps), i * 4);
  }
  return {
    table,
    spec: { cellLog, linklayer: T.TC_LINKLAYER_ETHERNET, overhead: options.overhead ?? 0, cellAlign: -1, mpu, rate: capped },
  };
}

// ------------------------------------------------------------------------------------ rate text

const RATE_UNITS: Record<string, number> = {
  bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, tbit: 1e12,
  kibit: 1024, mibit: 1024 ** 2, gibit: 1024 ** 3, tibit: 1024 ** 4,
  bps: 8, kbps: 8e3, mbps: 8e6, gbps: 8e9, tbps: 8e12,
  kibps: 8 * 1024, mibps: 8 * 1024 ** 2, gibps: 8 * 1024 ** 3, tibps: 8 * 1024 ** 4,
};

/**
 * A rate in bits per second: a number, or text with tc's units — `bit`, `kbit`, `mbit`, `gbit`,
 * `tbit` (powers of 1000), `kibit`... (of 1024), and `bps`, `kbps`, `mbps`... for bytes per
 * second, as tc reads them (case-insensitive): `'10mbit'` is 10,000,000. At least 8 bits/s.
 */
export function parseRate(v: unknown, field: string): number {
  let bits: number;
  if (typeof v === 'number') bits = v;
  else if (typeof v === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(v);
    const unit = m ? (m[2] || 'bit').toLowerCase() : '';
    const k = RATE_UNITS[unit];
    if (!m || k === undefined) throw new ValidationError(field, v, "expected a rate such as 10000000, '10mbit', '1gbit' or '500kbps'");
    bits = Number(m[1]) * k;
  } else {
    throw new ValidationError(field, v, "expected a rate in bits per second (a number) or text such as '10mbit'");
  }
  if (!Number.isFinite(bits) || bits < 8 || bits > Number.MAX_SAFE_INTEGER) {
    throw new ValidationError(field, v, `expected from 8 bits/s to ${Number.MAX_SAFE_INTEGER} bits/s`);
  }
  return Math.round(bits);
}

/** Bytes per second of `bits` per second (tc keeps rates in bytes/s). */
export function bytesPerSecond(bits: number): number {
  return Math.floor(bits / 8);
}
