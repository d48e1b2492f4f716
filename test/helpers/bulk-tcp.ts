// A bulk TCP transfer between two namespaces, for the shaping test and benchmark: a receiver
// (Node, in one namespace) times the bytes from the first to the last; a sender (Node, in the
// other) writes a fixed amount as fast as TCP takes it.
import { netns } from '@vmhost/net';

const RECEIVER = `
const net = require('node:net');
const srv = net.createServer((s) => {
  let n = 0, t0 = 0n, t1 = 0n;
  s.on('data', (d) => { t1 = process.hrtime.bigint(); if (!t0) t0 = t1; n += d.length; });
  s.on('end', () => { process.stdout.write(JSON.stringify({ bytes: n, seconds: Number(t1 - t0) / 1e9 }) + '\\n'); s.end(); srv.close(); });
});
srv.listen(Number(process.argv[1]), () => process.stdout.write('ready\\n'));
`;

const SENDER = `
const net = require('node:net');
const [host, port, total] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const chunk = Buffer.alloc(64 * 1024, 0x5a);
const s = net.connect(port, host, () => {
  let left = total;
  const pump = () => { while (left > 0) { const n = Math.min(left, chunk.length); left -= n; if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return s.once('drain', pump); } s.end(); };
  pump();
});
s.on('error', (e) => { process.stderr.write(String(e)); process.exit(1); });
`;

/** What the receiver measured. */
export interface Transfer {
  bytes: number;
  seconds: number;
  /** bytes * 8 / seconds / 1e6. */
  mbit: number;
}

/** Sends `bytes` from `fromNs` to `host:port` in `toNs` over TCP and returns the receiver's measurement. */
export async function bulkTransfer(fromNs: string, toNs: string, host: string, port: number, bytes: number, timeoutMs = 120_000): Promise<Transfer> {
  const rx = netns.spawn(toNs, process.execPath, ['-e', RECEIVER, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    let err = '';
    rx.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const result = new Promise<string>((resolve, reject) => {
      rx.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line) resolve(line);
      });
      rx.once('exit', (code) => reject(new Error(`receiver exited ${String(code)}: ${err}`)));
    });
    await new Promise<void>((resolve, reject) => {
      const check = (): void => void (out.includes('ready') ? resolve() : undefined);
      rx.stdout!.on('data', check);
      rx.once('exit', () => reject(new Error(`receiver exited before listening: ${err}`)));
    });
    const tx = await netns.run(fromNs, process.execPath, ['-e', SENDER, host, String(port), String(bytes)], { timeoutMs });
    if (tx.code !== 0) throw new Error(`sender exited ${String(tx.code)}: ${tx.stderr}`);
    const m = JSON.parse(await result) as { bytes: number; seconds: number };
    return { ...m, mbit: (m.bytes * 8) / m.seconds / 1e6 };
  } finally {
    rx.kill('SIGKILL');
  }
}
