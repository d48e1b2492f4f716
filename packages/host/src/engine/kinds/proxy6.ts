/**
 * The IPv6 TCP proxy service of plan B; a changed definition (the recorded options) restarts it.
 * @module
 */
import { proxyServiceStatus, startProxyService, stopProxyService } from '../../services/proxy6.js';
import type { Proxy6Entry } from '../entries.js';
import { serviceKind } from './service.js';

/** The IPv6 proxy service kind. */
export const proxy6Kind = serviceKind<Proxy6Entry>('proxy6', { status: proxyServiceStatus, start: startProxyService, stop: stopProxyService }, {
  strip: ({ dir: _dir, ...rest }) => rest,
  record: (id, status, options) => ({ kind: 'proxy6', id, status, data: { options } }),
  entry: (options, dir) => ({ kind: 'proxy6', id: 'proxy6', data: { options: { ...options, dir } } }),
});
