/**
 * What the section resolvers of the host file share: the {@link Checker} collecting problems,
 * the base directory of relative paths, the names and MACs claimed so far (each used once), and
 * what earlier sections found that later ones check against (the host's name, the bridge's
 * subnets, the IPv6 prefix and mode). Sections run in document order, so problems are listed in
 * that order.
 * @module
 */
import { resolve as resolvePath } from 'node:path';
import { ip, type Prefix } from '@vmhost/net';
import { Checker } from './checker.js';

/** The shared state of one resolution. */
export class SpecContext {
  /** The problems found so far. */
  readonly c = new Checker();
  /** The directory relative paths are resolved against (absolute). */
  readonly base: string;
  /** The host's name (when valid): it names the firewall chains. */
  hostName: string | undefined;
  /** The bridge's IPv4 prefix, once `bridge` is resolved (and valid). */
  bridge4: Prefix | undefined;
  /** The bridge's IPv6 prefix, when given and valid. */
  bridge6: Prefix | undefined;
  /** `bridge.ipv6` as written (for messages and the routed-mode check). */
  bridge6Given: unknown;
  /** Whether the `bridge` mapping was there (valid or not). */
  hasBridge = false;
  /** Whether the `ipv6` section was given. */
  hasIpv6 = false;
  /** The VMs' IPv6 prefix, once `ipv6` is resolved (and valid). */
  prefix6: Prefix | undefined;
  /** `ipv6.mode`, when valid. */
  mode6: 'routed' | 'proxy' | undefined;

  /** Interface names in use, to the path that uses them. */
  readonly #ifNames = new Map<string, string>();
  /** MACs in use, to the path that uses them. */
  readonly #macs = new Map<string, string>();
  /** {@link bridge4}, its network address and its last address. */
  #ends: [Prefix, string, string] | undefined;

  constructor(baseDir: string) {
    this.base = resolvePath(baseDir);
  }

  /** Claims an interface name for `path` (a problem when another path has it). */
  claimIf(name: string | undefined, path: string, what = 'interface name'): void {
    if (name === undefined) return;
    const other = this.#ifNames.get(name);
    if (other !== undefined) this.c.add(path, name, `${what} ${name} is already used by ${other}`);
    else this.#ifNames.set(name, path);
  }

  /** Claims a MAC for `path` (a problem when another path has it). */
  claimMac(mac: string | undefined, path: string, note = ''): void {
    if (mac === undefined) return;
    const other = this.#macs.get(mac);
    if (other !== undefined) this.c.add(path, mac, `MAC ${mac}${note} is already used by ${other}`);
    else this.#macs.set(mac, path);
  }

  /** Checks that an IPv4 address (canonical text) is a usable VM-side address of the bridge subnet (a problem otherwise). */
  inBridgeSubnet(a: string, path: string, value: unknown): boolean {
    const b = this.bridge4;
    if (!b) return true; // already reported
    const net = b.network;
    if (!ip.contains(b, a)) return !this.c.add(path, value, `not inside the bridge subnet ${net}`);
    // the subnet's first and last address, once per host file (every VM's address is checked)
    if (this.#ends?.[0] !== b) this.#ends = [b, ip.networkAddress(b), ip.lastAddress(b)];
    if (a === this.#ends[1]) return !this.c.add(path, value, `is the network address of the bridge subnet ${net}`);
    if (a === this.#ends[2]) return !this.c.add(path, value, `is the broadcast address of the bridge subnet ${net}`);
    if (a === b.address) return !this.c.add(path, value, `is the bridge's own address (bridge.ipv4)`);
    return true;
  }
}
