/**
 * pfifo and bfifo: a plain FIFO of `limit` packets (pfifo) or bytes (bfifo); `struct
 * tc_fifo_qopt` as the whole TCA_OPTIONS payload.
 * @module
 */
import { validateInt } from '../../validate.js';
import type { FifoQdiscSpec } from '../types.js';
import { structCodec, type TcKind } from './kind.js';

/** pfifo/bfifo: TCA_OPTIONS (`struct tc_fifo_qopt`). */
export interface FifoOptions {
  limit: number;
}

export const fifo: TcKind<FifoOptions> = {
  kinds: ['pfifo', 'bfifo'],
  options: structCodec(4, (b) => ({ limit: b.readUInt32LE(0) }), (b, v) => b.writeUInt32LE(v.limit >>> 0, 0)),
  qdisc: {
    validate(spec) {
      const s = spec as FifoQdiscSpec;
      if (s.limit !== undefined) validateInt(s.limit, 'limit', 1, 0xffffffff);
    },
    encode: (spec) => {
      const s = spec as FifoQdiscSpec;
      return s.limit === undefined ? undefined : { limit: s.limit };
    },
    decode: (d) => (d ? { fifo: { limit: d.limit } } : {}),
  },
};
