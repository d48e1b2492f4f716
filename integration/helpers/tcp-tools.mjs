#!/usr/bin/env node
// TCP traffic for the proxy's tests and benchmark, run inside a namespace (plain JavaScript, so
// that it starts fast without tsx). One mode per invocation; options are --name value pairs.
//
//   serve  --listen ADDR:PORT [--mode echo|http|silent] [--banner TEXT]
//          prints "listening"; http: answers every request (read up to the blank line) with a
//          200 and closes; echo: echoes; silent: reads and never answers. A banner is sent first.
//   flood  --to ADDR --port P --from A1,A2,... --conns N [--payload TEXT] [--trickle-ms MS]
//          [--reconnect-ms MS]
//          keeps N connections (sources round-robin) open: sends the payload, then one byte every
//          trickle-ms (slowloris); reopens a closed one after reconnect-ms (never without it).
//          Reads commands on stdin: "status" prints a JSON line { opened, closed, live, refused,
//          errors }; "quit" closes everything and exits.
//   probe  --to ADDR --port P --from A1,A2,... --count N [--concurrency C] [--timeout-ms T]
//          [--mode http|echo] [--gap-ms MS] [--warmup W]
//          makes N requests, C at a time per source address (one client per address, requests
//          of a client one after the other, gap-ms apart), after W uncounted ones per client, and
//          prints one JSON line { ok, failed, reasons, latencies } (latencies in ms of the
//          successful ones, from connect to the complete answer).
import { connect, createServer } from 'node:net';
import { createInterface } from 'node:readline';

const [mode, ...rest] = process.argv.slice(2);
const opt = {};
for (let i = 0; i < rest.length; i += 2) opt[rest[i].replace(/^--/, '')] = rest[i + 1];
const num = (k, d) => (opt[k] === undefined ? d : Number(opt[k]));
const HTTP_REQUEST = 'GET / HTTP/1.0\r\nHost: vm\r\n\r\n';
const HTTP_ANSWER = 'HTTP/1.0 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n';

function serve() {
  const i = opt.listen.lastIndexOf(':');
  const host = opt.listen.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(opt.listen.slice(i + 1));
  const m = opt.mode ?? 'echo';
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    if (opt.banner) s.write(`${opt.banner}\r\n`);
    if (m === 'echo') {
      s.pipe(s);
    } else if (m === 'http') {
      let got = '';
      s.on('data', (d) => {
        got += d.toString('latin1');
        if (got.includes('\r\n\r\n')) s.end(HTTP_ANSWER);
      });
      s.on('end', () => s.end());
    } else {
      s.resume();
    }
  });
  server.maxConnections = 100_000;
  server.listen({ host, port, backlog: 4096 }, () => process.stdout.write('listening\n'));
}

function flood() {
  const sources = opt.from.split(',');
  const n = num('conns', 1);
  const trickle = num('trickle-ms', 0);
  const reconnect = opt['reconnect-ms'] === undefined ? -1 : num('reconnect-ms', 0);
  const c = { opened: 0, closed: 0, live: 0, refused: 0, errors: {} };
  const sockets = new Set();
  let quitting = false;
  const open = (slot) => {
    const s = connect({ host: opt.to, port: num('port'), localAddress: sources[slot % sources.length] });
    sockets.add(s);
    let up = false;
    let timer;
    s.on('connect', () => {
      up = true;
      c.opened++;
      c.live++;
      if (opt.payload) s.write(opt.payload.replace(/\\r\\n/g, '\r\n'));
      if (trickle > 0) timer = setInterval(() => s.write('X'), trickle);
    });
    s.on('data', () => undefined);
    s.on('error', (e) => {
      c.errors[e.code ?? 'other'] = (c.errors[e.code ?? 'other'] ?? 0) + 1;
    });
    s.on('close', () => {
      clearInterval(timer);
      sockets.delete(s);
      if (up) {
        c.live--;
        c.closed++;
      } else {
        c.refused++;
      }
      if (!quitting && reconnect >= 0) setTimeout(() => open(slot), reconnect);
    });
  };
  for (let i = 0; i < n; i++) open(i);
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === 'status') process.stdout.write(`${JSON.stringify(c)}\n`);
    if (line.trim() === 'quit') {
      quitting = true;
      for (const s of sockets) s.destroy();
      process.exit(0);
    }
  });
}

async function probe() {
  const count = num('count', 1);
  const conc = num('concurrency', 1);
  const timeoutMs = num('timeout-ms', 5000);
  const gap = num('gap-ms', 0);
  const m = opt.mode ?? 'http';
  const sources = opt.from.split(',');
  const out = { ok: 0, failed: 0, reasons: {}, latencies: [] };
  const one = (from, counted) =>
    new Promise((resolve) => {
      const t0 = performance.now();
      const s = connect({ host: opt.to, port: num('port'), localAddress: from });
      let got = '';
      let done = false;
      const finish = (why) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        s.destroy();
        if (!counted) {
          // warm-up
        } else if (why === undefined) {
          out.ok++;
          out.latencies.push(performance.now() - t0);
        } else {
          out.failed++;
          out.reasons[why] = (out.reasons[why] ?? 0) + 1;
        }
        resolve();
      };
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      s.on('connect', () => s.write(m === 'http' ? HTTP_REQUEST : 'ping\n'));
      s.on('data', (d) => {
        got += d.toString('latin1');
        if (m === 'echo' && got === 'ping\n') finish();
      });
      s.on('end', () => finish(m === 'http' && got === HTTP_ANSWER ? undefined : got ? 'short answer' : 'closed'));
      s.on('error', (e) => finish(e.code ?? 'error'));
    });
  for (const from of sources) for (let i = 0; i < num('warmup', 0); i++) await one(from, false);
  let next = 0;
  const worker = async (from) => {
    while (next < count) {
      next++;
      await one(from, true);
      if (gap > 0) await new Promise((r) => setTimeout(r, gap));
    }
  };
  const workers = [];
  for (const from of sources) for (let i = 0; i < conc; i++) workers.push(worker(from));
  await Promise.all(workers);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

if (mode === 'serve') serve();
else if (mode === 'flood') flood();
else if (mode === 'probe') await probe();
else {
  process.stderr.write('usage: tcp-tools.mjs serve|flood|probe --option value ...\n');
  process.exit(2);
}
