/**
 * The QMP codec: what the server sent, decoded and checked, and what the client sends, encoded
 * and checked. Pure code, no I/O. Every malformed input becomes a {@link QmpProtocolError} (or a
 * {@link QmpNegotiationError} for a greeting of the wrong shape); nothing here throws anything
 * else, whatever the bytes.
 * @module
 */
import { ValidationError } from '@vmhost/net';
import { QmpNegotiationError, QmpProtocolError } from '../errors.js';
import type { QmpEvent } from './events.js';

/**
 * Deepest nesting of arrays and objects accepted in a message, both ways: QEMU's own JSON parser
 * refuses deeper input (json-streamer.c, MAX_NESTING 1024). Deeper server output is a protocol
 * error (JSON.stringify, String() and recursive code of callers overflow the stack on 100k-deep
 * values); deeper arguments are refused before sending.
 */
export const MAX_JSON_DEPTH = 1024;

/**
 * Largest command text sent: QEMU's parser counts at most 2 Mi tokens per message and would
 * answer one over-long message with several errors. One byte per token at least, so a limit below
 * that in bytes is safe.
 */
export const MAX_COMMAND_BYTES = 2_000_000;

/**
 * Whether the JSON text `text` nests arrays/objects deeper than `max`. A scan that skips string
 * contents (escapes included); the text need not be valid JSON. Constant time for short texts:
 * nesting `max + 1` deep takes at least `2 * (max + 1)` characters.
 */
export function exceedsDepth(text: string, max: number = MAX_JSON_DEPTH): boolean {
  if (text.length < 2 * (max + 1)) return false;
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // a string: jump to its closing quote (a backslash escapes the next character)
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/** A decoded server message. */
export type QmpIncoming =
  | { kind: 'event'; event: QmpEvent }
  | { kind: 'return'; id: unknown; hasId: boolean; value: unknown }
  | { kind: 'error'; id: unknown; hasId: boolean; errorClass: string; desc: string }
  | { kind: 'other' };

/**
 * Parses one line into a JSON object, checking depth first.
 * @throws {QmpProtocolError} bad JSON, too deep, not an object.
 */
export function parseObject(line: string, what: string): Record<string, unknown> {
  if (exceedsDepth(line)) throw new QmpProtocolError(`${what} nests deeper than ${MAX_JSON_DEPTH} levels`, line);
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch (err) {
    throw new QmpProtocolError(`bad JSON in ${what}`, line, { cause: err });
  }
  if (!isObject(msg)) throw new QmpProtocolError(`${what} is not a JSON object`, line);
  return msg;
}

/**
 * Decodes one line of a negotiated session: an event, a success or error reply, or a message of
 * no known kind (tolerated: a newer QEMU may add some).
 * @throws {QmpProtocolError} bad JSON, too deep, not an object, or a reply/event of the wrong shape
 *   (an `error` that is not `{class: string, desc: string}`, both `return` and `error`, an event
 *   whose timestamp is not numbers).
 */
export function decodeMessage(line: string): QmpIncoming {
  const msg = parseObject(line, 'QMP message');
  if ('event' in msg) {
    if (typeof msg.event !== 'string') throw new QmpProtocolError('QMP event name is not a string', line);
    const ts = msg.timestamp;
    if (ts !== undefined && !(isObject(ts) && typeof ts.seconds === 'number' && typeof ts.microseconds === 'number')) {
      throw new QmpProtocolError('QMP event timestamp is not {seconds, microseconds} numbers', line);
    }
    if ('data' in msg && !isObject(msg.data)) throw new QmpProtocolError('QMP event data is not an object', line);
    const event: QmpEvent = {
      event: msg.event,
      timestamp: ts ? { seconds: ts.seconds as number, microseconds: ts.microseconds as number } : { seconds: 0, microseconds: 0 },
    };
    if ('data' in msg) event.data = msg.data;
    return { kind: 'event', event };
  }
  const hasReturn = 'return' in msg;
  const hasError = 'error' in msg;
  if (hasReturn && hasError) throw new QmpProtocolError('QMP reply has both return and error', line);
  if (hasReturn) return { kind: 'return', id: msg.id, hasId: 'id' in msg, value: msg.return };
  if (hasError) {
    const e = msg.error;
    if (!isObject(e) || typeof e.class !== 'string' || typeof e.desc !== 'string') {
      throw new QmpProtocolError('QMP error reply is not {class: string, desc: string}', line);
    }
    return { kind: 'error', id: msg.id, hasId: 'id' in msg, errorClass: e.class, desc: e.desc };
  }
  return { kind: 'other' };
}

/** The validated greeting. */
export interface QmpGreeting {
  version: { qemu: QemuVersion; package: string };
  /** Capabilities the server offered (e.g. `['oob']`). */
  capabilities: string[];
}

/** QEMU's version triple from the greeting. */
export interface QemuVersion {
  major: number;
  minor: number;
  micro: number;
}

/**
 * Checks a greeting line.
 * @throws {QmpProtocolError} not a JSON object (or too deep). {@link QmpNegotiationError} an object that is not a greeting.
 */
export function decodeGreeting(line: string): QmpGreeting {
  const msg = parseObject(line, 'the QMP greeting');
  const bad = (why: string): QmpNegotiationError => new QmpNegotiationError(`not a QMP greeting (${why}): ${excerpt(line)}`);
  const q = msg.QMP;
  if (!isObject(q)) throw bad('no QMP object');
  const v = q.version;
  if (!isObject(v) || !isObject(v.qemu)) throw bad('no version.qemu');
  const { major, minor, micro } = v.qemu;
  if (![major, minor, micro].every((n) => Number.isInteger(n) && (n as number) >= 0)) throw bad('version.qemu is not a version triple');
  const caps = q.capabilities;
  if (!Array.isArray(caps) || caps.some((c) => typeof c !== 'string')) throw bad('capabilities is not a list of strings');
  return {
    version: { qemu: { major: major as number, minor: minor as number, micro: micro as number }, package: typeof v.package === 'string' ? v.package : '' },
    capabilities: caps as string[],
  };
}

/**
 * The text of a command. In-band commands carry no `id` (QEMU answers them in the order sent, and
 * reads its input one byte per system call, so every byte counts); out-of-band ones carry `id`
 * (their replies may overtake). No trailing newline: QEMU's parser ends a message at its closing
 * brace.
 * @throws {ValidationError} arguments that are not JSON (BigInt, cycles), nest deeper than
 *   {@link MAX_JSON_DEPTH} - 1, or make the command longer than {@link MAX_COMMAND_BYTES}.
 */
export function encodeCommand(name: string, args: Record<string, unknown> | undefined, oobId?: number): string {
  let argText: string | undefined;
  if (args !== undefined) {
    try {
      argText = JSON.stringify(args);
    } catch (err) {
      throw new ValidationError('args', args, `cannot be sent as JSON: ${(err as Error).message}`);
    }
    if (exceedsDepth(argText, MAX_JSON_DEPTH - 1)) throw new ValidationError('args', '(deep value)', `nests deeper than ${MAX_JSON_DEPTH - 1} levels`);
  }
  const head = oobId === undefined ? `{"execute":${JSON.stringify(name)}` : `{"exec-oob":${JSON.stringify(name)}`;
  const text = `${head}${argText === undefined ? '' : `,"arguments":${argText}`}${oobId === undefined ? '' : `,"id":${oobId}`}}`;
  // a UTF-16 length times 3 bounds the UTF-8 length: count bytes only when it might matter
  if (text.length * 3 > MAX_COMMAND_BYTES && Buffer.byteLength(text) > MAX_COMMAND_BYTES) {
    throw new ValidationError('args', `(${Buffer.byteLength(text)} bytes)`, `the command must fit in ${MAX_COMMAND_BYTES} bytes`);
  }
  return text;
}

/** The first 200 characters of `s`, for messages. */
export function excerpt(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}...` : s;
}

/** Whether `v` is a plain JSON object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
