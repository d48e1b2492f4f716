/**
 * The kinds of the supervised services (dnsmasq, the IPv6 proxy): running or not by the
 * service's status (its pidfile or a /proc scan, checked against the command line naming its
 * config file), restarted when the recorded options differ from the wanted ones. The service's
 * directory is always `<stateDir>/<sub>` (made 0700 before the start), never a path of the record.
 * @module
 */
import { join } from 'node:path';
import type { NetnsRef } from '@vmhost/net';
import { withNetns, type Ctx } from '../context.js';
import type { DnsmasqEntry, Proxy6Entry } from '../entries.js';
import type { DnsmasqRecord, Proxy6Record } from '../records.js';
import { privateDir } from '../state-dir.js';
import { done, sameOptions, type KindOps } from './kind.js';

/** What the engine needs of a service. */
export interface ServiceControl<O extends { dir: string }> {
  status(dir: string): { running: boolean };
  /** Idempotent: nothing when the same options run; a restart when they differ. */
  start(o: O & { netns?: NetnsRef }): Promise<unknown>;
  stop(dir: string): Promise<boolean>;
}

type ServiceEntry = DnsmasqEntry | Proxy6Entry;
type RecordOf<E extends ServiceEntry> = E extends DnsmasqEntry ? DnsmasqRecord : Proxy6Record;
type RecordedOptions<E extends ServiceEntry> = NonNullable<RecordOf<E>['data']['options']>;

/**
 * The kind of a service entry, over its control functions; `sub` is its directory under the
 * state directory. `strip` gives the options as recorded (without the directory and namespace),
 * `record` builds a record, `entry` an entry from recorded options and the directory.
 */
export function serviceKind<E extends ServiceEntry>(
  sub: 'dnsmasq' | 'proxy6',
  svc: ServiceControl<E['data']['options']>,
  shape: {
    strip(o: E['data']['options']): RecordedOptions<E>;
    record(id: string, status: 'intended' | 'done', options: RecordedOptions<E> | null): RecordOf<E>;
    entry(options: RecordedOptions<E>, dir: string): E;
  },
): KindOps<E, RecordOf<E>> {
  const dirOf = (ctx: Ctx): string => join(ctx.dir, sub);
  return {
    style: 'process',
    keepsLive: true, // touches nothing the live view holds
    intent: async (_ctx, e) => shape.record(e.id, 'intended', shape.strip(e.data.options)),
    async inspect(ctx, e, recorded) {
      if (!svc.status(dirOf(ctx)).running) return 'missing';
      const opts = recorded?.data.options;
      return opts !== undefined && opts !== null && sameOptions(opts, shape.strip(e.data.options)) ? 'ok' : 'differs';
    },
    async create(ctx, e, intent) {
      privateDir(ctx.dir, sub);
      await svc.start(withNetns(ctx, { ...e.data.options, dir: dirOf(ctx) }));
      return done(intent);
    },
    async update(ctx, e, recorded) {
      privateDir(ctx.dir, sub);
      await svc.start(withNetns(ctx, { ...e.data.options, dir: dirOf(ctx) }));
      const before = recorded?.data.options ?? null;
      return {
        record: shape.record(e.id, 'done', shape.strip(e.data.options)),
        undo: async () => {
          if (before !== null) await svc.start(withNetns(ctx, shape.entry(before, dirOf(ctx)).data.options));
          else await svc.stop(dirOf(ctx));
        },
      };
    },
    async destroy(ctx) {
      return { removed: await svc.stop(dirOf(ctx)) };
    },
    reconcile: async (ctx, r) => (svc.status(dirOf(ctx)).running ? done(r) : undefined),
    remake: (ctx, r) => (r.data.options !== null ? shape.entry(r.data.options as RecordedOptions<E>, dirOf(ctx)) : undefined),
    removalText: () => sub === 'dnsmasq' ? 'dnsmasq' : 'IPv6 proxy',
  };
}
