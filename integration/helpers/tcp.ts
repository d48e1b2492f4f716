// Typed wrappers of tcp-tools.mjs (a TCP server, a flood of held connections, a probe of
// requests) run inside a namespace; used by the proxy's integration tests and its benchmark.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { netns } from '@vmhost/net';

const TOOL = fileURLToPath(new URL('./tcp-tools.mjs', import.meta.url));

/** What a flood reports: connections opened (connected), closed after that, live now, failed before connecting, errors by code. */
export interface FloodStatus {
  opened: number;
  closed: number;
  live: number;
  refused: number;
  errors: Record<string, number>;
}

/** What a probe reports. */
export interface ProbeResult {
  ok: number;
  failed: number;
  reasons: Record<string, number>;
  /** Milliseconds from connect to the complete answer, of the successful requests. */
  latencies: number[];
}

function spawnTool(ns: string, args: string[]): { child: ChildProcess; lines: AsyncIterator<string> } {
  const child = netns.spawn(ns, process.execPath, [TOOL, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return { child, lines };
}

async function nextLine(lines: AsyncIterator<string>, what: string): Promise<string> {
  const r = await lines.next();
  if (r.done) throw new Error(`${what}: the tool ended without output`);
  return r.value;
}

/** A server (`echo`, `http` or `silent`, optionally with a banner) listening in `ns`; resolves once it listens. */
export async function serve(ns: string, listen: string, o: { mode?: 'echo' | 'http' | 'silent'; banner?: string } = {}): Promise<{ pid: number; stop(): void }> {
  const { child, lines } = spawnTool(ns, ['serve', '--listen', listen, '--mode', o.mode ?? 'echo', ...(o.banner ? ['--banner', o.banner] : [])]);
  const line = await nextLine(lines, `serve ${listen}`);
  if (line !== 'listening') throw new Error(`serve ${listen}: ${line}`);
  return { pid: child.pid!, stop: () => child.kill('SIGKILL') };
}

/** Options of {@link flood}. */
export interface FloodOptions {
  to: string;
  port: number;
  /** Source addresses, used round-robin. */
  from: readonly string[];
  conns: number;
  /** Sent once connected (`\r\n` written as the four characters is turned into CRLF). */
  payload?: string;
  /** One byte every this many ms (slowloris). Default none. */
  trickleMs?: number;
  /** Reopen a closed connection after this many ms. Default never. */
  reconnectMs?: number;
}

/** A flood of held connections from `ns`; `status()` asks for its counters, `stop()` ends it. */
export function flood(ns: string, o: FloodOptions): { status(): Promise<FloodStatus>; stop(): Promise<void> } {
  const args = ['flood', '--to', o.to, '--port', String(o.port), '--from', o.from.join(','), '--conns', String(o.conns)];
  if (o.payload !== undefined) args.push('--payload', o.payload);
  if (o.trickleMs !== undefined) args.push('--trickle-ms', String(o.trickleMs));
  if (o.reconnectMs !== undefined) args.push('--reconnect-ms', String(o.reconnectMs));
  const { child, lines } = spawnTool(ns, args);
  child.stdin!.on('error', () => undefined); // ended with its namespace
  let gone = false;
  const exited = new Promise<void>((r) =>
    child.once('exit', () => {
      gone = true;
      r();
    }),
  );
  return {
    async status() {
      child.stdin!.write('status\n');
      return JSON.parse(await nextLine(lines, 'flood status')) as FloodStatus;
    },
    async stop() {
      if (gone) return;
      child.stdin!.write('quit\n');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Options of {@link probe}. */
export interface ProbeOptions {
  to: string;
  port: number;
  /** One client per source address (or one address). */
  from: string | readonly string[];
  /** Requests in all. */
  count: number;
  /** Requests at a time per client. Default 1. */
  concurrency?: number;
  /** Uncounted requests per client first. */
  warmup?: number;
  timeoutMs?: number;
  mode?: 'http' | 'echo';
  /** Pause between two requests of one worker. */
  gapMs?: number;
}

/** Makes `o.count` requests from `ns` and reports how they went. */
export async function probe(ns: string, o: ProbeOptions): Promise<ProbeResult> {
  const args = ['probe', '--to', o.to, '--port', String(o.port), '--from', typeof o.from === 'string' ? o.from : o.from.join(','), '--count', String(o.count)];
  if (o.warmup !== undefined) args.push('--warmup', String(o.warmup));
  if (o.concurrency !== undefined) args.push('--concurrency', String(o.concurrency));
  if (o.timeoutMs !== undefined) args.push('--timeout-ms', String(o.timeoutMs));
  if (o.mode !== undefined) args.push('--mode', o.mode);
  if (o.gapMs !== undefined) args.push('--gap-ms', String(o.gapMs));
  const { lines } = spawnTool(ns, args);
  return JSON.parse(await nextLine(lines, 'probe')) as ProbeResult;
}

/** Until `cond()` holds (polled every 20 ms), at most `ms`; then throws with `what`. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`not reached within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const START_PROXY = fileURLToPath(new URL('./start-proxy.ts', import.meta.url));

/**
 * Starts the proxy service (`startProxyService` of `module`, default this tree's) from a child
 * process whose open-file limit is `limit`, so that the service inherits it; returns the pid.
 */
export async function startProxyWithLimit(options: object, limit: { soft: number; hard: number }, module?: string): Promise<number> {
  const mod = module ?? fileURLToPath(new URL('../../packages/host/src/services/proxy6.ts', import.meta.url));
  const child = spawn(process.execPath, ['--conditions=vmhost-source', '--import', 'tsx', START_PROXY, mod, String(limit.soft), String(limit.hard), JSON.stringify(options)], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const r = await netns.collect(child, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`start-proxy exited ${r.code}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { pid: number }).pid;
}
