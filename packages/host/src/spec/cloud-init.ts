/**
 * The `cloudInit` sections: the host-wide defaults (top level) and each VM's own, merged (the VM's
 * fields win, the ssh keys of both are given, each once). Checked here without I/O: the host
 * name, the user, every ssh key (parsed: type, canonical base64, the blob's type and sizes) and
 * the user-data path; the user-data file itself is read when planning and applying
 * (engine/seeds.ts), before anything is touched.
 * @module
 */
import { ValidationError } from '@vmhost/net';
import { parseSshPublicKey } from '../guests/ssh-key.js';
import type { ResolvedCloudInit, ResolvedHost } from '../types.js';
import { absent, at, type Obj } from './checker.js';
import type { SpecContext } from './context.js';
import { CLOUD_INIT, CLOUD_INIT_DEFAULTS } from './schema.js';

const F = CLOUD_INIT.keys;

/** The host-wide defaults as resolved. */
export type CloudInitDefaults = NonNullable<ResolvedHost['cloudInit']>;

/** The keys of `v` at `path` (each once: by type and blob), as normalised lines; undefined after a problem. */
function sshKeys(ctx: SpecContext, v: unknown, path: string): string[] | undefined {
  const { c } = ctx;
  if (absent(v)) return [];
  if (!Array.isArray(v)) return c.add(path, v, 'expected a list of OpenSSH public key lines');
  if (v.length > F.sshAuthorizedKeys.maxItems) return c.add(path, v, `at most ${F.sshAuthorizedKeys.maxItems} keys (${v.length})`);
  const out: string[] = [];
  let ok = true;
  v.forEach((k: unknown, i) => {
    const p = `${path}[${i}]`;
    if (typeof k === 'string' && Buffer.byteLength(k) > F.sshAuthorizedKeys.items.maxBytes) {
      ok = !c.add(p, `${k.slice(0, 40)}...`, `longer than ${F.sshAuthorizedKeys.items.maxBytes} bytes`);
      return;
    }
    try {
      out.push(parseSshPublicKey(k, p).line);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      ok = !c.add(p, k, err.reason);
    }
  });
  return ok ? out : undefined;
}

/** The user: the table's pattern, and not root (cloud-init would lock root's password and add the keys to root). */
function user(ctx: SpecContext, v: unknown, path: string): string | undefined {
  if (absent(v)) return undefined;
  const u = ctx.c.name(v, path, F.user);
  if (u === 'root') return ctx.c.add(path, v, 'not root: the keys go to a user of their own with sudo (root logins stay disabled)');
  return u;
}

/** The fields both levels have, at `path` of the mapping `o`; `failed` when one was bad. */
function common(ctx: SpecContext, o: Obj, path: string): { user?: string; keys: string[]; userData?: string; networkConfig?: 'auto' | 'none'; failed: boolean } {
  const { c } = ctx;
  const before = c.problems.length + c.dropped;
  const u = user(ctx, at(o, 'user'), `${path}.user`);
  const keys = sshKeys(ctx, at(o, 'sshAuthorizedKeys'), `${path}.sshAuthorizedKeys`) ?? [];
  const udV = at(o, 'userData');
  const userData = absent(udV) ? undefined : c.path(udV, `${path}.userData`, ctx.base);
  const ncV = at(o, 'networkConfig');
  const networkConfig = absent(ncV) ? undefined : c.oneOf(ncV, `${path}.networkConfig`, F.networkConfig);
  return {
    ...(u !== undefined ? { user: u } : {}),
    keys,
    ...(userData !== undefined ? { userData } : {}),
    ...(networkConfig !== undefined ? { networkConfig } : {}),
    failed: c.problems.length + c.dropped > before,
  };
}

/** Resolves the top-level `cloudInit` (`v`, as written; left out: undefined); `failed` after a problem. */
export function resolveCloudInitDefaults(ctx: SpecContext, v: unknown): CloudInitDefaults | 'failed' | undefined {
  if (absent(v)) return undefined;
  const o = ctx.c.obj(v, 'cloudInit', CLOUD_INIT_DEFAULTS);
  if (!o) return 'failed';
  const r = common(ctx, o, 'cloudInit');
  if (r.failed) return 'failed';
  return {
    ...(r.user !== undefined ? { user: r.user } : {}),
    sshAuthorizedKeys: r.keys,
    ...(r.userData !== undefined ? { userData: r.userData } : {}),
    ...(r.networkConfig !== undefined ? { networkConfig: r.networkConfig } : {}),
  };
}

/**
 * Resolves a VM's `cloudInit` at `path` (`v`, as written; left out: no seed) merged with the
 * host-wide defaults `given` (`failed`: the top-level section had a problem, already reported);
 * no `cloudInit` when left out or after a problem (`failed` tells which).
 */
export function resolveVmCloudInit(ctx: SpecContext, v: unknown, path: string, vmName: string | undefined, given: CloudInitDefaults | 'failed' | undefined): { cloudInit?: ResolvedCloudInit; failed: boolean } {
  if (absent(v)) return { failed: false };
  const defaults = given === 'failed' ? undefined : given;
  const { c } = ctx;
  const o = c.obj(v, path, CLOUD_INIT);
  if (!o) return { failed: true };
  const before = c.problems.length + c.dropped;
  const hnV = at(o, 'hostname');
  const hostname = absent(hnV) ? vmName : c.name(hnV, `${path}.hostname`, F.hostname);
  const r = common(ctx, o, path);
  const keys = [...new Map([...(defaults?.sshAuthorizedKeys ?? []), ...r.keys].map((k) => [k.split(' ').slice(0, 2).join(' '), k])).values()];
  const userData = r.userData ?? defaults?.userData;
  if (!r.failed && given !== 'failed' && keys.length === 0 && userData === undefined) {
    c.add(`${path}.sshAuthorizedKeys`, at(o, 'sshAuthorizedKeys'), 'a seed needs at least one ssh key (here or in the top-level cloudInit) or a userData file: nobody could log in');
  }
  if (c.problems.length + c.dropped > before || hostname === undefined) return { failed: true };
  return {
    cloudInit: {
      hostname,
      user: r.user ?? defaults?.user ?? F.user.default,
      sshAuthorizedKeys: keys,
      ...(userData !== undefined ? { userData } : {}),
      networkConfig: r.networkConfig ?? defaults?.networkConfig ?? F.networkConfig.default,
    },
    failed: false,
  };
}
