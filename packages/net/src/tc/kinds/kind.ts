/**
 * What one qdisc kind is to @vmhost/net: its TCA_OPTIONS wire codec, and for the qdisc and (if
 * classful) its classes how a spec is checked, encoded into options and how the kernel's options
 * become the public {@link Qdisc} / {@link TrafficClass} fields. One file per kind implements it;
 * `index.ts` lists them. Internal.
 * @module
 */
import { CodecError, onPayload, type ValueCodec } from '../../codec/attrs.js';
import type { Psched } from '../rate.js';
import type { ClassSpec, Qdisc, QdiscSpec, TrafficClass } from '../types.js';

/** One qdisc kind. `D` is its decoded TCA_OPTIONS. */
export interface TcKind<D = unknown> {
  /** The TCA_KIND values it reads and writes (e.g. `['pfifo', 'bfifo']`). */
  readonly kinds: readonly string[];
  /** The TCA_OPTIONS codec (attribute header included). */
  readonly options: ValueCodec<D>;
  /** The qdisc side. */
  readonly qdisc: {
    /** Checks the kind's own fields (dev and placement are checked already); throws ValidationError. */
    validate(spec: QdiscSpec): void;
    /** The options of a request; undefined sends none (the kernel's defaults). */
    encode(spec: QdiscSpec, ps: Psched): D | undefined;
    /** The kind's fields of the public {@link Qdisc}. `handle` is the qdisc's own. */
    decode(data: D | undefined, handle: number, ps: Psched): Partial<Qdisc>;
    /** A fixed place in the tree (ingress: parent ffff:fff1, handle ffff:). */
    readonly placement?: { parent: number; handle: number };
  };
  /** The class side, for classful kinds. */
  readonly class?: {
    validate(spec: ClassSpec): void;
    encode(spec: ClassSpec, ps: Psched): D;
    decode(data: D | undefined, ps: Psched): Partial<TrafficClass>;
  };
}

/** A value codec for a fixed-size C struct: `read` gets exactly `len` bytes (longer payloads, from newer kernels, are cut). */
export function structCodec<T>(len: number, read: (b: Buffer) => T, write: (b: Buffer, v: T) => void): ValueCodec<T> {
  return {
    decode: onPayload((d) => {
      if (d.length < len) return undefined;
      try {
        return read(d.subarray(0, len));
      } catch (err) {
        if (err instanceof CodecError) return undefined;
        throw err;
      }
    }),
    encode: (w, t, v) => {
      const b = Buffer.alloc(len);
      write(b, v);
      w.attr(t, b);
    },
  };
}
