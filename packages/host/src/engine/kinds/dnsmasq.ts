/**
 * dnsmasq on the bridge, a supervised service; a changed definition (the recorded options)
 * restarts it.
 * @module
 */
import { dnsmasqStatus, startDnsmasq, stopDnsmasq } from '../../services/dnsmasq.js';
import { withNetns } from '../context.js';
import type { DnsmasqEntry } from '../entries.js';
import { sameOptions, type KindOps } from './kind.js';

export const dnsmasqKind: KindOps<DnsmasqEntry> = {
  style: 'process',
  async inspect(_ctx, e, recorded) {
    if (!dnsmasqStatus(e.data.options.dir).running) return 'missing';
    return recorded && sameOptions(recorded.data.options, e.data.options) ? 'ok' : 'differs';
  },
  async create(ctx, e) {
    await startDnsmasq(withNetns(ctx, e.data.options));
    return e;
  },
  async update(ctx, e) {
    await startDnsmasq(withNetns(ctx, e.data.options));
  },
  async destroy(_ctx, e) {
    await stopDnsmasq(e.data.options.dir);
  },
};
