/**
 * The kinds of the supervised services (dnsmasq, the IPv6 proxy): running or not by the
 * service's status, restarted when the recorded options differ from the wanted ones.
 * @module
 */
import type { NetnsRef } from '@vmhost/net';
import { withNetns } from '../context.js';
import type { DnsmasqEntry, Proxy6Entry } from '../entries.js';
import { sameOptions, type KindOps } from './kind.js';

/** What the engine needs of a service. */
export interface ServiceControl<O extends { dir: string }> {
  status(dir: string): { running: boolean };
  /** Idempotent: nothing when the same options run; a restart when they differ. */
  start(o: O & { netns?: NetnsRef }): Promise<unknown>;
  stop(dir: string): Promise<unknown>;
}

/** The kind of a service entry, over its control functions. */
export function serviceKind<E extends DnsmasqEntry | Proxy6Entry>(svc: ServiceControl<E['data']['options']>): KindOps<E> {
  return {
    style: 'process',
    async inspect(_ctx, e, recorded) {
      if (!svc.status(e.data.options.dir).running) return 'missing';
      return recorded && sameOptions(recorded.data.options, e.data.options) ? 'ok' : 'differs';
    },
    async create(ctx, e) {
      await svc.start(withNetns(ctx, e.data.options));
      return e;
    },
    async update(ctx, e) {
      await svc.start(withNetns(ctx, e.data.options));
    },
    async destroy(_ctx, e) {
      await svc.stop(e.data.options.dir);
    },
  };
}
