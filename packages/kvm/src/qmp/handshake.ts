/**
 * The transport half of connecting: the Unix socket (with retries while QEMU starts), the
 * greeting, and capability negotiation. The session itself is {@link QmpClient}.
 * @module
 */
import { createConnection, type Socket } from 'node:net';
import pRetry, { AbortError } from 'p-retry';
import { QmpAbortedError, QmpConnectError, QmpError, QmpNegotiationError, QmpProtocolError } from '../errors.js';
import { decodeGreeting, excerpt, isObject, parseObject, type QmpGreeting } from './decode.js';
import { LineSplitter, type LineItem } from './lines.js';

const RETRIABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);

/** A negotiated connection, handed to the session. */
export interface Negotiated {
  socket: Socket;
  splitter: LineSplitter;
  greeting: QmpGreeting;
  capabilities: string[];
  /** Lines that arrived after the negotiation reply, in the same chunk. */
  rest: string[];
}

/** The protocol error a bad framing item is. */
export function itemError(item: Exclude<LineItem, { line: string }>): QmpProtocolError {
  return 'overflow' in item
    ? new QmpProtocolError(`QMP line of ${item.overflow} bytes exceeds the cap`, item.head)
    : new QmpProtocolError('QMP line is not valid UTF-8', item.head);
}

/**
 * Connects to `path`, retrying ENOENT/ECONNREFUSED with backoff (20 → 250 ms) within `timeoutMs`
 * and while `isAlive()` holds.
 */
export async function connectSocket(path: string, timeoutMs: number, deadline: number, isAlive: () => boolean, signal: AbortSignal | undefined): Promise<Socket> {
  try {
    return await pRetry(
      async () => {
        if (!isAlive()) throw new AbortError(new QmpConnectError(path, 'the QEMU process exited before QMP answered'));
        return await connectOnce(path, signal);
      },
      {
        retries: 1_000,
        factor: 1.5,
        minTimeout: 20,
        maxTimeout: 250,
        maxRetryTime: timeoutMs,
        signal,
        shouldRetry: ({ error }) => RETRIABLE.has((error as { code?: string }).code ?? '') && performance.now() < deadline && isAlive(),
      },
    );
  } catch (err) {
    if (signal?.aborted) throw new QmpAbortedError(`QMP connect ${path}`, signal.reason);
    if (err instanceof QmpError) throw err;
    if (!isAlive()) throw new QmpConnectError(path, 'the QEMU process exited before QMP answered', { cause: err });
    throw new QmpConnectError(path, `cannot connect within ${timeoutMs} ms: ${(err as Error).message}`, { cause: err });
  }
}

function connectOnce(path: string, signal: AbortSignal | undefined): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ path });
    const onAbort = (): void => {
      s.destroy();
      reject(new AbortError(new QmpAbortedError(`QMP connect ${path}`, signal?.reason)));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    s.once('connect', () => {
      signal?.removeEventListener('abort', onAbort);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      s.destroy();
      reject(err);
    });
  });
}

/**
 * Reads and checks the greeting, sends `qmp_capabilities` (enabling `oob` when offered and
 * wanted) and waits for its reply, all before `deadline`. On return the socket has no listeners
 * of ours left: the session attaches its own.
 * @throws {QmpNegotiationError} {@link QmpProtocolError} {@link QmpAbortedError}.
 */
export async function negotiate(socket: Socket, options: { maxLineBytes: number; oob: boolean; signal?: AbortSignal }, deadline: number): Promise<Negotiated> {
  const splitter = new LineSplitter(options.maxLineBytes);
  const lines: string[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  const onData = (chunk: Buffer): void => {
    try {
      for (const item of splitter.push(chunk)) {
        if ('line' in item) lines.push(item.line);
        else failure ??= itemError(item);
      }
    } catch (err) {
      failure ??= new QmpProtocolError(`cannot read the QMP stream: ${(err as Error).message}`, '', { cause: err });
    } finally {
      wake?.();
    }
  };
  const onEnd = (): void => {
    failure ??= new QmpNegotiationError('QMP connection closed during negotiation');
    wake?.();
  };
  const onError = (err: Error): void => {
    failure ??= new QmpNegotiationError(`QMP socket error during negotiation: ${err.message}`, { cause: err });
    wake?.();
  };
  const signal = options.signal;
  const onAbort = (): void => {
    failure ??= new QmpAbortedError('QMP negotiation', signal?.reason);
    wake?.();
  };
  socket.on('data', onData);
  socket.on('close', onEnd);
  socket.on('error', onError);
  signal?.addEventListener('abort', onAbort, { once: true });

  const nextLine = async (what: string): Promise<string> => {
    for (;;) {
      // a failure (bad framing) is reported before any line after it is used
      if (failure) throw failure;
      if (lines.length) return lines.shift()!;
      const left = deadline - performance.now();
      if (left <= 0) throw new QmpNegotiationError(`no ${what} within the connect time limit`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        };
      });
    }
  };

  try {
    const greeting = decodeGreeting(await nextLine('the QMP greeting'));
    const enable = options.oob && greeting.capabilities.includes('oob') ? ['oob'] : [];
    socket.write(`${JSON.stringify({ execute: 'qmp_capabilities', arguments: { enable }, id: 'negotiate' })}\n`);
    for (;;) {
      const line = await nextLine('the reply to qmp_capabilities');
      const msg = parseObject(line, 'the reply to qmp_capabilities');
      if ('event' in msg) continue; // not expected before negotiation; harmless
      if ('error' in msg) {
        const e = isObject(msg.error) ? msg.error : {};
        const cls = typeof e.class === 'string' ? e.class : '?';
        const desc = typeof e.desc === 'string' ? e.desc : '?';
        throw new QmpNegotiationError(`qmp_capabilities refused: ${excerpt(cls)}: ${excerpt(desc)}`);
      }
      if ('return' in msg) break;
      throw new QmpNegotiationError(`unexpected message during negotiation: ${excerpt(line)}`);
    }
    return { socket, splitter, greeting, capabilities: enable, rest: lines.splice(0) };
  } finally {
    socket.off('data', onData);
    socket.off('close', onEnd);
    socket.off('error', onError);
    signal?.removeEventListener('abort', onAbort);
  }
}
