/**
 * A VM's `forwards`: published ports (a port or a range, the VM's port, the protocol), each
 * public port used by one forward only across all VMs.
 * @module
 */
import type { PortSpec, ResolvedForward } from '../types.js';
import { absent, at, type Checker } from './checker.js';
import { DEFAULTS, FORWARD_KEYS, PROTOCOLS } from './schema.js';

/** A forward's public ports, for the overlap check. */
export interface PortUse {
  path: string;
  protocol: 'tcp' | 'udp';
  first: number;
  last: number;
}

const portsText = (first: number, last: number): string => (first === last ? `port ${first}` : `ports ${first}-${last}`);

/** One forward; checks its public ports against the earlier ones (`ports`, which it extends). */
export function resolveForward(c: Checker, v: unknown, path: string, ports: PortUse[]): ResolvedForward | undefined {
  const f = c.obj(v, path, FORWARD_KEYS);
  if (!f) return undefined;
  const before = c.problems.length;
  const portV = at(f, 'port');
  let port: PortSpec | undefined;
  let first: number | undefined;
  let last: number | undefined;
  if (Array.isArray(portV)) {
    const a: unknown = portV[0];
    const b: unknown = portV[1];
    const isPort = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= 65535;
    if (portV.length !== 2 || !isPort(a) || !isPort(b)) c.add(`${path}.port`, portV, 'expected a port range [first, last] of integers from 1 to 65535');
    else if (a > b) c.add(`${path}.port`, portV, `reversed range: first port ${a} is after last port ${b}`);
    else [port, first, last] = [[a, b], a, b];
  } else if (absent(portV)) {
    c.add(`${path}.port`, undefined, 'required');
  } else {
    first = last = c.int(portV, `${path}.port`, 1, 65535);
    port = first;
  }
  const protocol = c.oneOf(at(f, 'protocol'), `${path}.protocol`, PROTOCOLS, DEFAULTS.protocol);
  const toPortV = at(f, 'toPort');
  let toPort = absent(toPortV) ? first : c.int(toPortV, `${path}.toPort`, 1, 65535);
  if (toPort !== undefined && first !== undefined && last !== undefined && toPort + (last - first) > 65535) {
    toPort = c.add(`${path}.toPort`, toPortV, `the range ${first}-${last} would map to ${toPort}-${toPort + (last - first)}, past 65535`);
  }
  if (first !== undefined && last !== undefined && protocol) {
    const other = ports.find((u) => u.protocol === protocol && u.first <= last! && first! <= u.last);
    if (other) {
      const mine = portsText(first, last);
      const theirs = portsText(other.first, other.last);
      c.add(
        `${path}.port`, portV,
        mine === theirs
          ? `${mine}/${protocol} is already forwarded by ${other.path}`
          : `${mine}/${protocol} overlap${first === last ? 's' : ''} ${theirs}/${protocol} forwarded by ${other.path}`,
      );
    } else ports.push({ path, protocol, first, last });
  }
  if (c.problems.length > before || port === undefined || toPort === undefined || !protocol) return undefined;
  return { protocol, port, toPort };
}
