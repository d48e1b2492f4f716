/**
 * MAC addresses of VM NICs.
 * @module
 */
import { createHash } from 'node:crypto';

/**
 * A locally administered unicast MAC, stable for a VM name and NIC index: the first six bytes of
 * SHA-256("vmhost/NAME/INDEX") with the multicast bit cleared and the locally administered bit set.
 * (QEMU's own default, 52:54:00:12:34:56, repeats across VMs on one bridge.)
 */
export function stableMac(vmName: string, nicIndex: number): string {
  const h = createHash('sha256').update(`vmhost/${vmName}/${nicIndex}`).digest();
  h[0] = (h[0]! & 0xfc) | 0x02;
  return [...h.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}
