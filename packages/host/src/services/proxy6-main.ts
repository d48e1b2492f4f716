/**
 * The proxy service process (see `startProxyService` in `proxy6.ts`):
 * `node proxy6-main.js <dir>/proxy6.json`. Reads the config, listens on every route, writes
 * `<dir>/proxy6.pid`, prints `ready` on stdout, and runs until SIGTERM or SIGINT, when it closes
 * its listeners and connections, removes the pidfile and exits 0. SIGUSR1 writes the counters to
 * `<dir>/proxy6.stats.json`. A failure to start is printed on stderr with exit code 1.
 * @module
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TcpProxy, type ProxyServiceConfig } from './proxy6.js';

async function main(): Promise<void> {
  const configPath = process.argv[2];
  if (!configPath) throw new Error('usage: proxy6-main CONFIG.json');
  const cfg = JSON.parse(readFileSync(configPath, 'utf8')) as ProxyServiceConfig;
  if (cfg.version !== 1 || typeof cfg.dir !== 'string') throw new Error(`${configPath}: not a proxy6 service config (version 1)`);
  const proxy = await TcpProxy.listen(cfg);
  const pidfile = join(cfg.dir, 'proxy6.pid');
  writeFileSync(pidfile, `${process.pid}\n`);

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void proxy.close().finally(() => {
      try {
        if (readFileSync(pidfile, 'utf8').trim() === String(process.pid)) rmSync(pidfile, { force: true });
      } catch {
        /* already gone */
      }
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => undefined);
  process.on('SIGUSR1', () => {
    const file = join(cfg.dir, 'proxy6.stats.json');
    try {
      writeFileSync(`${file}.tmp`, `${JSON.stringify({ at: new Date().toISOString(), pid: process.pid, routes: proxy.stats() }, null, 2)}\n`);
      renameSync(`${file}.tmp`, file);
    } catch (err) {
      process.stderr.write(`proxy6: writing ${file}: ${String(err)}\n`);
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
