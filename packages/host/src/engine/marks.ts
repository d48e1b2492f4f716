/**
 * How vmhost marks what it makes, so that `down`, an undo and `vmhost recover` can tell it from
 * what others made, from the kernel's own view (the state file is a record, never a proof):
 *
 * - links: the interface alias (IFLA_IFALIAS) `vmhost:<owner>`, `<owner>` the host's name. The
 *   kernel keeps it for the link's life (vmhost restarts do not matter), `ip -j link` shows it
 *   (`ifalias`), it holds up to 255 bytes, no other tool on a VM host sets it by default, and
 *   only CAP_NET_ADMIN can change it. The kernel ignores an alias in the request that creates a
 *   link, so a link is made under a temporary name (`vmhx<token>`, a veth peer `vmhy<token>`,
 *   the token recorded ahead) and then renamed and marked in one request: a crash leaves either
 *   an unmarked link under a name only vmhost uses, or the marked link.
 * - addresses, routes and proxy neighbours: the protocol field (IFA_PROTO, rtm_protocol,
 *   NDA_PROTOCOL) {@link MARK_PROTOCOL}, unused by the protocols iproute2 lists. One byte has no
 *   room for an owner; these are also tied to the host's links or prefix.
 * - firewall rules: the owner's chains `VMHOST-<owner>-*` (@vmhost/firewall).
 * - processes: a VM is the QEMU whose command line names the QMP socket in the VM's run directory
 *   (`<stateDir>/vms/<name>/qmp.sock`); dnsmasq and the proxy the process whose command line names
 *   its config file in `<stateDir>/dnsmasq` or `<stateDir>/proxy6` (checked in /proc, pidfile or not).
 * @module
 */
import { randomBytes } from 'node:crypto';

/** The protocol number vmhost gives its addresses, routes and proxy neighbours ('v'). */
export const MARK_PROTOCOL = 118;

/** The interface alias of the links of the host `owner`. */
export function linkMark(owner: string): string {
  return `vmhost:${owner}`;
}

/** A fresh token for temporary link names (11 hex digits: `vmhx` + token is 15 bytes). */
export function newTempToken(): string {
  return randomBytes(6).toString('hex').slice(0, 11);
}

/** The temporary names of a link and of its veth peer. */
export function tempNames(token: string): [string, string] {
  return [`vmhx${token}`, `vmhy${token}`];
}

/** Whether a route's protocol (as @vmhost/net reports it: a name or a number as text) is vmhost's. */
export function isMarkedProtocol(p: string | number | null | undefined): boolean {
  return p !== null && p !== undefined && String(p) === String(MARK_PROTOCOL);
}
