/**
 * A VM's `forwards`: published ports (a port or a range, the VM's port, the protocol), each
 * public port used by one forward only across all VMs. The overlap check takes O(log 65536) per
 * forward ({@link PortTable}), so a host file of thousands of forwards resolves as fast as one of
 * ten (it was quadratic).
 * @module
 */
import type { PortSpec, ResolvedForward } from '../types.js';
import { absent, at, type Checker } from './checker.js';
import { FORWARD } from './schema.js';

const F = FORWARD.keys;

/** A forward's public ports. */
export interface PortUse {
  path: string;
  first: number;
  last: number;
}
const PORTS = 65536;

/**
 * The public ports taken so far, per protocol: a Fenwick tree of taken ports (count in a range,
 * the first taken port at or after one) and the forward that took each. Forwards that overlap
 * are refused, so each port is taken once: filling costs at most 65,535 updates per protocol in
 * all, and each lookup O(log 65536).
 */
export class PortTable {
  readonly #tree = new Int32Array(PORTS + 1);
  readonly #owner = new Int32Array(PORTS).fill(-1);
  readonly #uses: PortUse[] = [];

  /** Taken ports from 1 to `p`. */
  #upTo(p: number): number {
    let n = 0;
    for (let i = p; i > 0; i -= i & -i) n += this.#tree[i]!;
    return n;
  }

  /** The `k`-th taken port (1-based), by descending the tree. */
  #kth(k: number): number {
    let pos = 0;
    for (let step = PORTS; step > 0; step >>= 1) {
      const next = pos + step;
      if (next <= PORTS && this.#tree[next]! < k) {
        pos = next;
        k -= this.#tree[next]!;
      }
    }
    return pos + 1;
  }

  /** The forward that took the first taken port in `first..last`, if any. */
  find(first: number, last: number): PortUse | undefined {
    const before = this.#upTo(first - 1);
    if (this.#upTo(last) === before) return undefined;
    return this.#uses[this.#owner[this.#kth(before + 1)]!];
  }

  /** Takes `first..last` (free: check with {@link find} first) for the forward at `path`. */
  take(first: number, last: number, path: string): void {
    const id = this.#uses.push({ path, first, last }) - 1;
    for (let p = first; p <= last; p++) {
      this.#owner[p] = id;
      for (let i = p; i <= PORTS; i += i & -i) this.#tree[i]!++;
    }
  }
}

/** The public ports taken so far, by protocol. */
export type PortUses = Record<'tcp' | 'udp', PortTable>;

/** An empty {@link PortUses}. */
export const newPortUses = (): PortUses => ({ tcp: new PortTable(), udp: new PortTable() });

const portsText = (first: number, last: number): string => (first === last ? `port ${first}` : `ports ${first}-${last}`);
const isPort = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= 65535;

/** One forward; checks its public ports against the earlier ones (`ports`, which it extends). */
export function resolveForward(c: Checker, v: unknown, path: string, ports: PortUses): ResolvedForward | undefined {
  const f = c.obj(v, path, FORWARD);
  if (!f) return undefined;
  const before = c.problems.length + c.dropped;
  const portV = at(f, 'port');
  let port: PortSpec | undefined;
  let first: number | undefined;
  let last: number | undefined;
  if (Array.isArray(portV)) {
    const a: unknown = portV[0];
    const b: unknown = portV[1];
    if (portV.length !== 2 || !isPort(a) || !isPort(b)) c.add(`${path}.port`, portV, 'expected a port range [first, last] of integers from 1 to 65535');
    else if (a > b) c.add(`${path}.port`, portV, `reversed range: first port ${a} is after last port ${b}`);
    else [port, first, last] = [[a, b], a, b];
  } else if (absent(portV)) {
    c.add(`${path}.port`, undefined, 'required');
  } else {
    first = last = c.int(portV, `${path}.port`, { ...F.toPort, required: true });
    port = first;
  }
  const protocol = c.oneOf(at(f, 'protocol'), `${path}.protocol`, F.protocol);
  const toPortV = at(f, 'toPort');
  let toPort = absent(toPortV) ? first : c.int(toPortV, `${path}.toPort`, F.toPort);
  if (toPort !== undefined && first !== undefined && last !== undefined && toPort + (last - first) > 65535) {
    toPort = c.add(`${path}.toPort`, toPortV, `the range ${first}-${last} would map to ${toPort}-${toPort + (last - first)}, past 65535`);
  }
  if (first !== undefined && last !== undefined && protocol) {
    const other = ports[protocol].find(first, last);
    if (other) {
      const mine = portsText(first, last);
      const theirs = portsText(other.first, other.last);
      c.add(
        `${path}.port`, portV,
        mine === theirs
          ? `${mine}/${protocol} is already forwarded by ${other.path}`
          : `${mine}/${protocol} overlap${first === last ? 's' : ''} ${theirs}/${protocol} forwarded by ${other.path}`,
      );
    } else ports[protocol].take(first, last, path);
  }
  if (c.problems.length + c.dropped > before || port === undefined || toPort === undefined || !protocol) return undefined;
  return { protocol, port, toPort };
}
