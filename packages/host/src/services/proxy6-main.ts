/**
 * The proxy service process (see `startProxyService` in `proxy6-service.ts`):
 * `node proxy6-main.js <dir>/proxy6.json`. As root, it reads the config, raises its open-file
 * limit to what the total connection cap needs (lowering the cap to fit when the limit cannot be
 * raised so far), listens on every route, writes `<dir>/proxy6.pid`, opens
 * `<dir>/proxy6.stats.json`; then it drops to the configured user and group (no supplementary
 * groups, no capabilities left) and prints `ready` on stdout. It runs until SIGTERM or SIGINT,
 * when it closes its listeners and connections and exits 0 (the stopper removes the pidfile: the
 * directory is root's). SIGUSR1 rewrites the stats file through the descriptor opened before the
 * drop. A failure to start is printed on stderr with exit code 1.
 * @module
 */
import { ftruncateSync } from 'node:fs';
import { noFileLimit, raiseNoFileLimit, type NoFileLimit } from '@vmhost/net';
import { openPrivateFile, plainFileError, readPrivateFile, writeAll, writePrivateFile } from './files.js';
import { connectionBudget, filesNeeded } from './proxy6-options.js';
import { proxyServiceFiles, type ProxyServiceConfig } from './proxy6-service.js';
import { TcpProxy } from './proxy6.js';

/**
 * Drops root for `user` and `group`: supplementary groups cleared, then the gid, then the uid
 * (real, effective and saved: setuid as root sets all three, and the kernel clears the
 * capabilities). Checked afterwards; a process that is not root has nothing to drop.
 */
function dropPrivileges(user: string | number, group: string | number): void {
  if (process.getuid!() !== 0 && process.geteuid!() !== 0) return;
  process.setgroups!([]);
  process.setgid!(group);
  process.setuid!(user);
  const uid = process.getuid!();
  const gid = process.getgid!();
  if (uid === 0 || process.geteuid!() !== uid || gid === 0 || process.getegid!() !== gid || process.getgroups!().some((g) => g !== gid)) {
    throw new Error(`dropping privileges to ${user}:${group} failed (uid ${uid}, gid ${gid}, groups ${process.getgroups!().join(',')})`);
  }
}

/** The open-file limit the cap needs, and the cap that fits the limit obtained. */
function sizeForFiles(cfg: ProxyServiceConfig): { limit: NoFileLimit; maxTotalConnections: number } {
  const routes = cfg.routes.length;
  const limit = raiseNoFileLimit(filesNeeded(cfg.maxTotalConnections, routes));
  const budget = connectionBudget(limit.soft, routes);
  if (budget < 1) throw new Error(`the open-file limit ${limit.soft} (hard ${limit.hard}) leaves no room for a connection over ${routes} route(s)`);
  if (budget < cfg.maxTotalConnections) {
    process.stderr.write(`proxy6: open-file limit ${limit.soft} (hard ${limit.hard}): total connection cap lowered from ${cfg.maxTotalConnections} to ${budget}\n`);
  }
  return { limit, maxTotalConnections: Math.min(cfg.maxTotalConnections, budget) };
}

async function main(): Promise<void> {
  const configPath = process.argv[2];
  if (!configPath) throw new Error('usage: proxy6-main CONFIG.json');
  const text = readPrivateFile(configPath, undefined, plainFileError);
  if (text === undefined) throw new Error(`${configPath}: missing`);
  const cfg = JSON.parse(text.toString('utf8')) as ProxyServiceConfig;
  if (cfg.version !== 2 || typeof cfg.dir !== 'string' || !Array.isArray(cfg.routes)) throw new Error(`${configPath}: not a proxy6 service config (version 2)`);
  const files = proxyServiceFiles(cfg.dir);

  const { maxTotalConnections } = sizeForFiles(cfg);
  const proxy = await TcpProxy.listen({ ...cfg, maxTotalConnections });
  writePrivateFile(files.pid, `${process.pid}\n`, plainFileError);
  const statsFd = openPrivateFile(files.stats, 'truncate', plainFileError);
  dropPrivileges(cfg.user, cfg.group);
  const fileLimit = noFileLimit();

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void proxy.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => undefined);
  let seq = 0;
  process.on('SIGUSR1', () => {
    seq++;
    const body = { seq, at: new Date().toISOString(), pid: process.pid, uid: process.getuid!(), gid: process.getgid!(), fileLimit, totals: proxy.totals(), routes: proxy.stats(), end: seq };
    // rewritten in place (the directory is root's now): readers check that `end` matches `seq`
    const buf = Buffer.from(`${JSON.stringify(body, null, 2)}\n`);
    try {
      writeAll(statsFd, buf, 0);
      ftruncateSync(statsFd, buf.length);
    } catch (err) {
      process.stderr.write(`proxy6: writing ${files.stats}: ${String(err)}\n`);
    }
  });
  // The parent closes its end of stdout once it has read 'ready'.
  process.stdout.on('error', () => undefined);
  process.stdout.write('ready\n');
}

// Nothing a peer does should end the service: TcpProxy handles socket errors itself; anything
// else is logged (stderr is proxy6.log) and the service goes on.
process.on('uncaughtException', (err) => {
  process.stderr.write(`proxy6: uncaught: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
});

main().catch((err: unknown) => {
  process.stderr.write(`proxy6: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
