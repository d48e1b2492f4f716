/**
 * dnsmasq on the bridge, a supervised service; a changed definition (the recorded options)
 * restarts it.
 * @module
 */
import { dnsmasqStatus, startDnsmasq, stopDnsmasq } from '../../services/dnsmasq.js';
import type { DnsmasqEntry } from '../entries.js';
import { serviceKind } from './service.js';

/** The dnsmasq kind. */
export const dnsmasqKind = serviceKind<DnsmasqEntry>('dnsmasq', { status: dnsmasqStatus, start: startDnsmasq, stop: stopDnsmasq }, {
  strip: ({ dir: _dir, netns: _netns, ...rest }) => rest,
  record: (id, status, options) => ({ kind: 'dnsmasq', id, status, data: { options } }),
  entry: (options, dir) => ({ kind: 'dnsmasq', id: 'dnsmasq', data: { options: { ...options, dir } } }),
});
