// Small Node programs run inside test namespaces (UDP and TCP endpoints driven line by line), and
// a reader of a child's stdout lines that waits for the one a step expects. For the conntrack and
// traffic-control integration tests.
import type { TestContext } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { netns } from '@vmhost/net';

/**
 * A service in a "VM": answers each UDP datagram on `port` with `NAME:payload` and each TCP line on
 * `port` with `NAME:line`; prints `udp PAYLOAD` per datagram, `ready` once both listen.
 */
export const ECHO_SERVER = `
const dgram = require('node:dgram'), net = require('node:net');
const [name, port] = [process.argv[1], Number(process.argv[2])];
let up = 0; const ready = () => { if (++up === 2) process.stdout.write('ready\\n'); };
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => { process.stdout.write('udp ' + m + '\\n'); u.send(name + ':' + m, r.port, r.address); });
u.bind(port, ready);
net.createServer((s) => {
  let buf = '';
  s.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\\n')) >= 0) { s.write(name + ':' + buf.slice(0, i) + '\\n'); buf = buf.slice(i + 1); } });
  s.on('error', () => {});
}).listen(port, ready);
`;

/**
 * A client: one UDP socket (local port argv[3]) and one TCP connection to argv[1]:argv[2]; stdin
 * `u X` sends datagram X, `t X` sends TCP line X; prints `udp REPLY`, `tcp REPLY`, `ready` once
 * connected, `tcp-closed` / `tcp-error CODE`.
 */
export const LINE_CLIENT = `
const dgram = require('node:dgram'), net = require('node:net'), rl = require('node:readline');
const [host, port, localPort] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const u = dgram.createSocket('udp4');
u.on('message', (m) => process.stdout.write('udp ' + m + '\\n'));
u.bind(localPort, () => {
  const t = net.connect(port, host, () => process.stdout.write('ready\\n'));
  let buf = '';
  t.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\\n')) >= 0) { process.stdout.write('tcp ' + buf.slice(0, i) + '\\n'); buf = buf.slice(i + 1); } });
  t.on('error', (e) => process.stdout.write('tcp-error ' + e.code + '\\n'));
  t.on('close', () => process.stdout.write('tcp-closed\\n'));
  rl.createInterface({ input: process.stdin }).on('line', (l) => {
    const [k, v] = l.split(' ');
    if (k === 'u') u.send(v, port, host); else t.write(v + '\\n');
  });
});
`;

/** The stdout lines of a child, and a wait for the first (not yet taken) line matching a predicate. */
export class Lines {
  readonly seen: string[] = [];
  private taken = new Set<number>();
  private waiters: Array<() => void> = [];
  private ended = false;

  constructor(readonly child: ChildProcess, private readonly label: string) {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        this.seen.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      for (const w of this.waiters.splice(0)) w();
    });
    child.once('exit', () => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Waits for a line equal to `want` (or matching it), takes it and returns it. `signal` only turns a hang into a failure. */
  async take(want: string | RegExp, signal: AbortSignal = AbortSignal.timeout(60_000)): Promise<string> {
    const match = (l: string): boolean => (typeof want === 'string' ? l === want : want.test(l));
    for (;;) {
      const i = this.seen.findIndex((l, k) => !this.taken.has(k) && match(l));
      if (i >= 0) {
        this.taken.add(i);
        return this.seen[i]!;
      }
      if (this.ended) throw new Error(`${this.label} exited before printing ${String(want)}; it printed ${JSON.stringify(this.seen)}`);
      if (signal.aborted) throw new Error(`${this.label}: no ${String(want)} (printed ${JSON.stringify(this.seen)})`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.waiters.push(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  /** Lines printed so far matching `re`. */
  matching(re: RegExp): string[] {
    return this.seen.filter((l) => re.test(l));
  }
}

/** Spawns `node -e program args` in `ns` (killed when the test ends) and waits for its `ready` line. */
export async function startNode(t: TestContext, ns: string, label: string, program: string, args: string[]): Promise<Lines> {
  const child = netns.spawn(ns, process.execPath, ['-e', program, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => {
    child.kill('SIGKILL');
  });
  const lines = new Lines(child, label);
  await lines.take('ready');
  return lines;
}
