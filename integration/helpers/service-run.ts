// `vmhost run` driven as a user would from a test: the CLI started with --json, its events read
// as they come and waited for by predicate; and the traffic checks the service tests make from
// the `internet` namespace (a guest's banner, polled until it answers).
import type { ChildProcess } from 'node:child_process';
import { netns } from '@vmhost/net';
import type { ServiceEvent } from '@vmhost/host';
import { startVmhost, type CliResult } from './cli.js';

/** A running `vmhost run`: its events as they come (--json), waited for by predicate. */
export class Service {
  readonly events: ServiceEvent[] = [];
  readonly child: ChildProcess;
  readonly done: Promise<CliResult>;
  #waiters: Array<{ from: number; pred: (e: ServiceEvent) => boolean; resolve: (e: ServiceEvent) => void }> = [];
  #buf = '';

  constructor(args: string[]) {
    const s = startVmhost([...args, '--json']);
    this.child = s.child;
    this.done = s.done;
    this.child.stdout!.on('data', (d: Buffer) => {
      this.#buf += d.toString();
      let i: number;
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, i);
        this.#buf = this.#buf.slice(i + 1);
        if (line.trim() === '') continue;
        const e = JSON.parse(line) as ServiceEvent;
        this.events.push(e);
        const n = this.events.length - 1;
        this.#waiters = this.#waiters.filter((w) => {
          if (n >= w.from && w.pred(e)) {
            w.resolve(e);
            return false;
          }
          return true;
        });
      }
    });
  }

  /** A mark: events after it are new. */
  get mark(): number {
    return this.events.length;
  }

  /** The first event at or after `from` that `pred` takes (waits for it, at most `ms`). */
  wait(what: string, pred: (e: ServiceEvent) => boolean, from = this.mark, ms = 60_000): Promise<ServiceEvent> {
    const seen = this.events.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms; events: ${this.events.slice(from).map((e) => `${e.type}: ${e.message}`).join(' | ')}`)), ms);
      this.#waiters.push({ from, pred, resolve: (e) => (clearTimeout(timer), resolve(e)) });
      void this.done.then(() => reject(new Error(`vmhost run ended while waiting for ${what}`)));
    });
  }

  /** Sends `sig` and waits for the end. */
  async stop(sig: NodeJS.Signals): Promise<CliResult> {
    this.child.kill(sig);
    return this.done;
  }
}

/** A busybox nc from `ns` to address:port; the banner, or '' when nothing answered. */
export async function banner(ns: string, address: string, port: number): Promise<string> {
  const r = await netns.run(ns, '/bin/busybox', ['nc', '-w', '3', address, String(port)], { input: '', timeoutMs: 8_000 });
  return r.stdout.trim();
}

/** Waits until `address:port` answers from `ns` with `want` (a guest booting, a path coming back); the ms it took. */
export async function answers(ns: string, address: string, port: number, want: string, ms = 90_000): Promise<number> {
  const t0 = performance.now();
  let got = '';
  // a condition, polled: nothing announces that a guest serves again
  while (performance.now() - t0 < ms) {
    got = await banner(ns, address, port);
    if (got.includes(want)) return Math.round(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${address}:${port} from ${ns}: not "${want}" within ${ms} ms (got "${got}")`);
}

