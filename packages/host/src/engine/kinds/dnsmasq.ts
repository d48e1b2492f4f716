/**
 * dnsmasq on the bridge, a supervised service; a changed definition (the recorded options)
 * restarts it.
 * @module
 */
import { dnsmasqStatus, startDnsmasq, stopDnsmasq } from '../../services/dnsmasq.js';
import type { DnsmasqEntry } from '../entries.js';
import { serviceKind } from './service.js';

/** The dnsmasq kind. */
export const dnsmasqKind = serviceKind<DnsmasqEntry>({ status: dnsmasqStatus, start: startDnsmasq, stop: stopDnsmasq });
