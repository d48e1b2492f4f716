/**
 * The IPv6 TCP proxy service of plan B; a changed definition (the recorded options) restarts it.
 * @module
 */
import { proxyServiceStatus, startProxyService, stopProxyService } from '../../services/proxy6.js';
import { withNetns } from '../context.js';
import type { Proxy6Entry } from '../entries.js';
import { sameOptions, type KindOps } from './kind.js';

export const proxy6Kind: KindOps<Proxy6Entry> = {
  style: 'process',
  async inspect(_ctx, e, recorded) {
    if (!proxyServiceStatus(e.data.options.dir).running) return 'missing';
    return recorded && sameOptions(recorded.data.options, e.data.options) ? 'ok' : 'differs';
  },
  async create(ctx, e) {
    await startProxyService(withNetns(ctx, e.data.options));
    return e;
  },
  async update(ctx, e) {
    await startProxyService(withNetns(ctx, e.data.options));
  },
  async destroy(_ctx, e) {
    await stopProxyService(e.data.options.dir);
  },
};
