/**
 * The entries of a VM's bandwidth limits (docs/host-bandwidth.md), pure: towards the VM, a token
 * bucket (tbf) at the root of its TAP (what the TAP sends is what the VM receives); from the VM,
 * its TAP's ingress redirected (u32 match-all, mirred) to its ifb, whose root holds a tbf.
 * @module
 */
import { formatRate } from '../spec/schema.js';
import type { ResolvedVm } from '../types.js';
import type { Desired, TbfSettings } from './entries.js';

/** The bucket: what the rate allows in 25 ms (measured: smaller buckets lose 5-10% to timer and scheduling delays under load). */
export const BUCKET_SECONDS = 0.025;
/** The smallest bucket: two full-size frames (a tbf never sends a frame larger than its bucket). */
export const MIN_BUCKET_BYTES = 3200;
/** The queue: 50 ms at the rate; beyond it packets are dropped (TCP slows down). */
export const QUEUE_SECONDS = 0.05;
/** The handle of the tbf at a TAP's or an ifb's root. */
export const TBF_HANDLE = '1:';
/** The priority of the redirect filter on a TAP's ingress. */
export const REDIRECT_PRIO = 1;

/** The token bucket of `bps` bits per second. */
export function tbf(bps: number): TbfSettings {
  return { kind: 'tbf', rate: bps, burst: Math.max(MIN_BUCKET_BYTES, Math.round((bps / 8) * BUCKET_SECONDS)), latency: QUEUE_SECONDS };
}

/** The ifb link of a VM with `bandwidth.fromVm` (made with the links, before the rules and the VM). */
export function ifbEntries(vm: ResolvedVm): Desired[] {
  if (vm.ifb === undefined) return [];
  return [{ entry: { id: `link:${vm.ifb}`, kind: 'link', data: { name: vm.ifb, kind: 'ifb' } }, describe: `ifb ${vm.ifb} for what ${vm.name} sends` }];
}

/** The qdiscs and the filter of a VM's bandwidth limits, in the order they are made. */
export function bandwidthEntries(vm: ResolvedVm): Desired[] {
  const out: Desired[] = [];
  const to = vm.bandwidth?.toVm;
  const from = vm.bandwidth?.fromVm;
  if (to !== undefined) {
    out.push({ entry: { id: `qdisc:${vm.tap}:root`, kind: 'qdisc', data: { dev: vm.tap, parent: 'root', handle: TBF_HANDLE, qdisc: tbf(to) } }, describe: `qdisc tbf on ${vm.tap}: at most ${formatRate(to)} to ${vm.name}` });
  }
  if (from !== undefined && vm.ifb !== undefined) {
    out.push(
      { entry: { id: `qdisc:${vm.ifb}:root`, kind: 'qdisc', data: { dev: vm.ifb, parent: 'root', handle: TBF_HANDLE, qdisc: tbf(from) } }, describe: `qdisc tbf on ${vm.ifb}: at most ${formatRate(from)} from ${vm.name}` },
      { entry: { id: `qdisc:${vm.tap}:ingress`, kind: 'qdisc', data: { dev: vm.tap, parent: 'ingress', handle: 'ffff:', qdisc: { kind: 'ingress' } } }, describe: `ingress qdisc on ${vm.tap}` },
      { entry: { id: `tcFilter:${vm.tap}:ingress:${REDIRECT_PRIO}`, kind: 'tcFilter', data: { dev: vm.tap, parent: 'ingress', prio: REDIRECT_PRIO, redirect: vm.ifb } }, describe: `tc filter on ${vm.tap}: what ${vm.name} sends through ${vm.ifb}` },
    );
  }
  return out;
}
