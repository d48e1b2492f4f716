/**
 * tbf, the token bucket filter: `struct tc_tbf_qopt` (rate, peak rate, limit, bucket sizes in
 * scheduler ticks), the bucket in bytes (TCA_TBF_BURST/PBURST), the rate tables and the 64-bit
 * rates, encoded in the order iproute2's tc sends them.
 * @module
 */
import { binary, nested, schema, u32, u64, type WithOther } from '../../codec/attrs.js';
import * as T from '../../codec/tc-constants.js';
import { ValidationError } from '../../errors.js';
import { validateInt } from '../../validate.js';
import { bytesPerSecond, parseRate, rateTable, readRateSpec, ticksToUsec, writeRateSpec, xmitSize, xmitTime, type RateSpec } from '../rate.js';
import type { TbfQdiscSpec } from '../types.js';
import { structCodec, type TcKind } from './kind.js';

/** `struct tc_tbf_qopt` (buffer and mtu in scheduler ticks). */
export interface TbfParms {
  rate: RateSpec;
  peakrate: RateSpec;
  limit: number;
  buffer: number;
  mtu: number;
}

/** tbf: TCA_OPTIONS (TCA_TBF_*). */
export interface TbfOptions extends WithOther {
  parms?: TbfParms;
  burst?: number;
  rate64?: bigint;
  rtab?: Buffer;
  prate64?: bigint;
  pburst?: number;
  ptab?: Buffer;
}

const parmsCodec = structCodec<TbfParms>(
  36,
  (b) => ({ rate: readRateSpec(b, 0), peakrate: readRateSpec(b, 12), limit: b.readUInt32LE(24), buffer: b.readUInt32LE(28), mtu: b.readUInt32LE(32) }),
  (b, v) => {
    writeRateSpec(b, 0, v.rate);
    writeRateSpec(b, 12, v.peakrate);
    b.writeUInt32LE(v.limit >>> 0, 24);
    b.writeUInt32LE(v.buffer >>> 0, 28);
    b.writeUInt32LE(v.mtu >>> 0, 32);
  },
);

/** TCA_TBF_*, in the order tc writes them. */
const tbfSchema = schema('tbf', [
  [T.TCA_TBF_PARMS, 'parms', parmsCodec],
  [T.TCA_TBF_BURST, 'burst', u32],
  [T.TCA_TBF_RATE64, 'rate64', u64],
  [T.TCA_TBF_RTAB, 'rtab', binary],
  [T.TCA_TBF_PRATE64, 'prate64', u64],
  [T.TCA_TBF_PBURST, 'pburst', u32],
  [T.TCA_TBF_PTAB, 'ptab', binary],
]);

const NO_RATE: RateSpec = { cellLog: 0, linklayer: 0, overhead: 0, cellAlign: 0, mpu: 0, rate: 0 };

export const tbf: TcKind<TbfOptions> = {
  kinds: ['tbf'],
  options: nested<TbfOptions>(tbfSchema, false),
  qdisc: {
    validate(spec) {
      const s = spec as TbfQdiscSpec;
      parseRate(s.rate, 'rate');
      validateInt(s.burst, 'burst', 1, 0xffffffff);
      if ((s.latency === undefined) === (s.limit === undefined)) {
        throw new ValidationError(s.latency === undefined ? 'latency' : 'limit', s.latency ?? s.limit, 'give either latency (seconds) or limit (bytes)');
      }
      if (s.latency !== undefined && (typeof s.latency !== 'number' || !Number.isFinite(s.latency) || s.latency <= 0 || s.latency > 4294)) {
        throw new ValidationError('latency', s.latency, 'expected seconds, more than 0 and at most 4294');
      }
      if (s.limit !== undefined) validateInt(s.limit, 'limit', 1, 0xffffffff);
      if (s.peakrate !== undefined) {
        parseRate(s.peakrate, 'peakrate');
        if (s.mtu === undefined) throw new ValidationError('mtu', s.mtu, 'a peakrate needs mtu (the peak bucket in bytes)');
      }
      if (s.mtu !== undefined) validateInt(s.mtu, 'mtu', 1, 0xffffffff);
      if (s.mpu !== undefined) validateInt(s.mpu, 'mpu', 0, 65535);
    },
    encode(spec, ps) {
      const s = spec as TbfQdiscSpec;
      const rate = bytesPerSecond(parseRate(s.rate, 'rate'));
      const peak = s.peakrate === undefined ? 0 : bytesPerSecond(parseRate(s.peakrate, 'peakrate'));
      const mtu = s.mtu ?? 0;
      const tab = { mtu, mpu: s.mpu ?? 0 };
      let limit = s.limit;
      if (limit === undefined) {
        const usec = Math.round((s.latency ?? 0) * 1e6);
        let lim = (rate * usec) / 1e6 + s.burst;
        if (peak) lim = Math.min(lim, (peak * usec) / 1e6 + mtu);
        limit = Math.min(Math.trunc(lim), 0xffffffff);
      }
      const r = rateTable(rate, tab, ps);
      const p = peak ? rateTable(peak, tab, ps) : undefined;
      const o: TbfOptions = {
        parms: {
          rate: r.spec,
          peakrate: p?.spec ?? NO_RATE,
          limit,
          buffer: xmitTime(r.spec.rate, s.burst, ps),
          mtu: p ? xmitTime(p.spec.rate, mtu, ps) : 0,
        },
        burst: s.burst,
      };
      if (rate >= 2 ** 32) o.rate64 = BigInt(rate);
      o.rtab = r.table;
      if (p) {
        if (peak >= 2 ** 32) o.prate64 = BigInt(peak);
        o.pburst = mtu;
        o.ptab = p.table;
      }
      return o;
    },
    decode(d, _handle, ps) {
      const q = d?.parms;
      if (!q) return {};
      const rate = d?.rate64 !== undefined ? Number(d.rate64) : q.rate.rate;
      const peak = d?.prate64 !== undefined ? Number(d.prate64) : q.peakrate.rate;
      // As tc prints it: the longest wait of a byte at the end of a full queue.
      let latency = (1e6 * q.limit) / rate - ticksToUsec(q.buffer, ps);
      if (peak) latency = Math.max(latency, (1e6 * q.limit) / peak - ticksToUsec(q.mtu, ps));
      return {
        tbf: {
          rate: rate * 8,
          burst: xmitSize(rate, q.buffer, ps),
          limit: q.limit,
          latency: latency / 1e6,
          peakrate: peak ? peak * 8 : null,
          mtu: peak ? xmitSize(peak, q.mtu, ps) : null,
        },
      };
    },
  },
};
