// An in-process fake QMP server on a Unix socket, scripted by the test: it sends a greeting
// (configurable, may be split across writes), answers qmp_capabilities, and hands every other
// command to the test, which replies in any order, interleaves events, sends garbage or closes.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface QmpMessage {
  execute?: string;
  'exec-oob'?: string;
  arguments?: Record<string, unknown>;
  id?: unknown;
}

export interface FakeOptions {
  /** Raw greeting bytes, in chunks written separately (default: a QEMU 7.2 greeting in one write). */
  greetingChunks?: string[];
  /** Capabilities offered in the default greeting. Default ['oob']. */
  capabilities?: string[];
  /** Answer qmp_capabilities with this error instead of success. */
  refuseCapabilities?: { class: string; desc: string };
  /** Answers qmp_capabilities itself (e.g. with garbage) instead of the default reply. */
  onNegotiation?: (conn: FakeConn) => void;
  /** Called for every command after negotiation; default: queued for nextCommand(). */
  onCommand?: (msg: QmpMessage, conn: FakeConn) => void;
}

export class FakeConn {
  readonly socket: Socket;
  /** The qmp_capabilities message received. */
  negotiation: QmpMessage | undefined;
  readonly received: QmpMessage[] = [];
  /** The text of every message received, as sent (negotiation included). */
  readonly wire: string[] = [];
  #queue: QmpMessage[] = [];
  #waiters: ((m: QmpMessage) => void)[] = [];
  #buf = '';

  constructor(socket: Socket, private readonly opts: FakeOptions) {
    this.socket = socket;
    socket.on('error', () => undefined);
    // Like QEMU's json-streamer: a message ends where its top-level object closes; newlines and
    // other whitespace between messages are optional.
    let depth = 0;
    let inString = false;
    let escaped = false;
    socket.on('data', (d: Buffer) => {
      const text = d.toString('utf8');
      let from = 0;
      for (let i = 0; i < text.length; i++) {
        const c = text[i];
        if (inString) {
          if (escaped) escaped = false;
          else if (c === '\\') escaped = true;
          else if (c === '"') inString = false;
        } else if (c === '"') inString = true;
        else if (c === '{' || c === '[') depth++;
        else if (c === '}' || c === ']') {
          depth--;
          if (depth === 0) {
            const msg = this.#buf + text.slice(from, i + 1);
            this.#buf = '';
            from = i + 1;
            this.wire.push(msg);
            this.#onMessage(JSON.parse(msg) as QmpMessage);
          }
        }
      }
      this.#buf += depth > 0 ? text.slice(from) : '';
    });
  }

  #onMessage(msg: QmpMessage): void {
    if (msg.execute === 'qmp_capabilities') {
      this.negotiation = msg;
      if (this.opts.onNegotiation) this.opts.onNegotiation(this);
      else if (this.opts.refuseCapabilities) this.send({ error: this.opts.refuseCapabilities, id: msg.id });
      else this.send({ return: {}, id: msg.id });
      return;
    }
    this.received.push(msg);
    if (this.opts.onCommand) return this.opts.onCommand(msg, this);
    const w = this.#waiters.shift();
    if (w) w(msg);
    else this.#queue.push(msg);
  }

  /** The next command the client sent (after negotiation). */
  nextCommand(): Promise<QmpMessage> {
    const m = this.#queue.shift();
    if (m) return Promise.resolve(m);
    return new Promise((r) => this.#waiters.push(r));
  }

  /** Waits for `n` commands. */
  async commands(n: number): Promise<QmpMessage[]> {
    const out: QmpMessage[] = [];
    for (let i = 0; i < n; i++) out.push(await this.nextCommand());
    return out;
  }

  send(obj: unknown): void {
    this.socket.write(`${JSON.stringify(obj)}\r\n`);
  }

  sendRaw(data: string | Buffer): void {
    this.socket.write(data);
  }

  reply(msg: QmpMessage, ret: unknown): void {
    this.send({ return: ret, id: msg.id });
  }

  error(msg: QmpMessage, cls: string, desc: string): void {
    this.send({ error: { class: cls, desc }, id: msg.id });
  }

  event(name: string, data?: unknown): void {
    const e: Record<string, unknown> = { event: name, timestamp: { seconds: 1700000000, microseconds: 1 } };
    if (data !== undefined) e.data = data;
    this.send(e);
  }

  /** Closes the connection abruptly, as a dying QEMU does. */
  destroy(): void {
    this.socket.destroy();
  }
}

export class FakeQmpServer {
  readonly path: string;
  readonly dir: string;
  readonly connections: FakeConn[] = [];
  #server: Server;
  #waiters: ((c: FakeConn) => void)[] = [];
  #ready: FakeConn[] = [];

  private constructor(dir: string, server: Server) {
    this.dir = dir;
    this.path = join(dir, 'qmp.sock');
    this.#server = server;
  }

  /** Starts listening (or, with `listen: false`, only picks the path: nothing listens yet). */
  static async start(opts: FakeOptions = {}, listen = true): Promise<FakeQmpServer> {
    const dir = mkdtempSync(join(tmpdir(), 'vmhost-fakeqmp-'));
    let self: FakeQmpServer;
    const server = createServer((sock) => {
      const conn = new FakeConn(sock, opts);
      self.connections.push(conn);
      const caps = opts.capabilities ?? ['oob'];
      const chunks = opts.greetingChunks ?? [
        `${JSON.stringify({ QMP: { version: { qemu: { micro: 0, minor: 2, major: 7 }, package: 'fake' }, capabilities: caps } })}\r\n`,
      ];
      void (async () => {
        for (const c of chunks) {
          sock.write(c);
          await new Promise((r) => setTimeout(r, 5));
        }
        const w = self.#waiters.shift();
        if (w) w(conn);
        else self.#ready.push(conn);
      })();
    });
    self = new FakeQmpServer(dir, server);
    if (listen) await self.listen();
    return self;
  }

  listen(): Promise<void> {
    return new Promise((r) => this.#server.listen(this.path, () => r()));
  }

  /** The next accepted connection (after its greeting was written). */
  nextConnection(): Promise<FakeConn> {
    const c = this.#ready.shift();
    if (c) return Promise.resolve(c);
    return new Promise((r) => this.#waiters.push(r));
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.socket.destroy();
    await new Promise<void>((r) => this.#server.close(() => r()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
