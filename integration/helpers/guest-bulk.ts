// Bulk TCP transfers between a namespace and a test guest, for the bandwidth test and benchmark:
// to the guest's discard service (port 9: `cat > /dev/null`) timed by the sender from connect to
// the guest's close after the last byte (so every byte counted was delivered), and from the
// guest's chargen service (port 19: zeros) timed by the receiver from the first to the last byte.
// A refused connection is tried again for up to 10 s: the guest says it is ready once it started
// its services, which may listen a moment later.
import { netns } from '@vmhost/net';

/** What a transfer measured. */
export interface Transfer {
  bytes: number;
  seconds: number;
  /** bytes * 8 / seconds / 1e6. */
  mbit: number;
}

const SEND = `
const net = require('node:net');
const [host, port, total] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const chunk = Buffer.alloc(64 * 1024, 0x5a);
let t0 = 0n, tries = 0;
const go = () => {
  const s = net.connect(port, host, () => {
    t0 = process.hrtime.bigint();
    let left = total;
    const pump = () => { while (left > 0) { const n = Math.min(left, chunk.length); left -= n; if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return s.once('drain', pump); } s.end(); };
    pump();
  });
  s.on('data', () => {});
  s.on('close', (hadError) => {
    if (hadError) return;
    process.stdout.write(JSON.stringify({ bytes: total, seconds: Number(process.hrtime.bigint() - t0) / 1e9 }) + '\\n');
  });
  s.on('error', (e) => {
    if (!t0 && e.code === 'ECONNREFUSED' && ++tries < 50) return setTimeout(go, 200);
    process.stderr.write(String(e)); process.exit(1);
  });
};
go();
`;

const RECEIVE = `
const net = require('node:net');
const [host, port, ms] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
let n = 0, t0 = 0n, t1 = 0n, tries = 0;
const go = () => {
  const s = net.connect(port, host);
  s.on('data', (d) => {
    t1 = process.hrtime.bigint();
    if (!t0) { t0 = t1; setTimeout(() => { process.stdout.write(JSON.stringify({ bytes: n, seconds: Number(t1 - t0) / 1e9 }) + '\\n'); process.exit(0); }, ms); return; }
    n += d.length; // bytes after the first chunk, over the time since it came
  });
  s.on('error', (e) => {
    if (!t0 && e.code === 'ECONNREFUSED' && ++tries < 50) return setTimeout(go, 200);
    process.stderr.write(String(e)); process.exit(1);
  });
};
go();
`;

async function runJson(ns: string, program: string, args: string[], timeoutMs: number): Promise<Transfer> {
  const r = await netns.run(ns, process.execPath, ['-e', program, ...args], { timeoutMs });
  if (r.code !== 0) throw new Error(`transfer ${args.join(' ')} exited ${String(r.code)}: ${r.stderr}`);
  const m = JSON.parse(r.stdout.trim()) as { bytes: number; seconds: number };
  return { ...m, mbit: (m.bytes * 8) / m.seconds / 1e6 };
}

/** Sends `bytes` from `ns` to the discard service at `host`:`port`; the rate from connect to the service's close. */
export function sendBulk(ns: string, host: string, port: number, bytes: number, timeoutMs = 120_000): Promise<Transfer> {
  return runJson(ns, SEND, [host, String(port), String(bytes)], timeoutMs);
}

/** Reads the chargen service at `host`:`port` from `ns` for `seconds`; the rate from the first to the last byte. */
export function receiveBulk(ns: string, host: string, port: number, seconds: number, timeoutMs = 120_000): Promise<Transfer> {
  return runJson(ns, RECEIVE, [host, String(port), String(Math.round(seconds * 1000))], timeoutMs);
}
