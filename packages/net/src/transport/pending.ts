/**
 * The socket's record of one request (or barrier) from queueing to its answer. Internal.
 * @module
 */
import { constants as osConstants } from 'node:os';
import { NetlinkError } from './errors.js';
import {
  NETLINK_ROUTE, NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP, NLMSG_OVERRUN, parseNlmsgDone, parseNlmsgerr,
  type NlMsg,
} from './message.js';
import { isPlainAckAt, nlMsgAt } from './framing.js';

export type State = 'queued' | 'dump-waiting' | 'sent' | 'done';

/** Why a barrier was sent: answers lost in an overrun, or in a datagram that did not decode. */
export type BarrierReason = 'overrun' | 'malformed';

export interface Pending {
  type: number;
  flags: number;
  payload: Buffer;
  dump: boolean;
  op: string;
  seq: number;
  order: number;
  state: State;
  /** Timed out or aborted while sent: the answer is awaited only to be dropped. */
  abandoned: boolean;
  /** A barrier (internal, not counted as live): why it was sent; undefined for a request. */
  barrier: BarrierReason | undefined;
  replies: NlMsg[];
  /** Where the reply messages go instead of `replies`, left in their datagrams (see {@link InPlaceReplies}). */
  inPlace: InPlaceReplies | undefined;
  interrupted: boolean;
  attempts: number;
  resolve: (msgs: NlMsg[]) => void;
  reject: (err: unknown) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

const RTM_NAMES: Record<number, string> = {
  16: 'RTM_NEWLINK', 17: 'RTM_DELLINK', 18: 'RTM_GETLINK', 19: 'RTM_SETLINK',
  20: 'RTM_NEWADDR', 21: 'RTM_DELADDR', 22: 'RTM_GETADDR',
  24: 'RTM_NEWROUTE', 25: 'RTM_DELROUTE', 26: 'RTM_GETROUTE',
  28: 'RTM_NEWNEIGH', 29: 'RTM_DELNEIGH', 30: 'RTM_GETNEIGH',
  32: 'RTM_NEWRULE', 33: 'RTM_DELRULE', 34: 'RTM_GETRULE',
  36: 'RTM_NEWQDISC', 37: 'RTM_DELQDISC', 38: 'RTM_GETQDISC',
  64: 'RTM_NEWNETCONF', 66: 'RTM_GETNETCONF',
  68: 'RTM_NEWMDB', 69: 'RTM_DELMDB', 70: 'RTM_GETMDB',
  88: 'RTM_NEWNSID', 89: 'RTM_DELNSID', 90: 'RTM_GETNSID',
};

export function typeName(protocol: number, type: number): string {
  if (type === NLMSG_NOOP) return 'NLMSG_NOOP';
  return (protocol === NETLINK_ROUTE && RTM_NAMES[type]) || `netlink message type ${type}`;
}


/**
 * A request's reply messages (not its acknowledgement or NLMSG_DONE) left where they arrived:
 * per message its datagram, where its payload starts and ends, and its type; for readers that
 * decode them in place (the rtnetlink lists), without a message object and a Buffer view each.
 */
export class InPlaceReplies {
  readonly bufs: Buffer[] = [];
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  readonly types: number[] = [];
  /** Forgets what was collected (a dump that runs again). */
  clear(): void {
    this.bufs.length = this.starts.length = this.ends.length = this.types.length = 0;
  }
}

/** A new pending entry: a request (`barrier` undefined) or a barrier. */
export function newPending(
  fields: Pick<Pending, 'type' | 'flags' | 'payload' | 'dump' | 'op' | 'barrier' | 'resolve' | 'reject' | 'signal'>,
  inPlace?: InPlaceReplies,
): Pending {
  return {
    type: fields.type,
    flags: fields.flags,
    payload: fields.payload,
    dump: fields.dump,
    op: fields.op,
    seq: 0,
    order: 0,
    state: 'queued',
    abandoned: false,
    barrier: fields.barrier,
    replies: [],
    inPlace,
    interrupted: false,
    attempts: 0,
    resolve: fields.resolve,
    reject: fields.reject,
    timer: undefined,
    signal: fields.signal,
    onAbort: undefined,
  };
}

/** What one message means for the request it answers: nothing yet (undefined), or its end. */
export type Outcome = { error?: unknown; interrupted?: boolean };

/** The end of a request that succeeded (shared: outcomes are only read). */
const SUCCEEDED: Outcome = Object.freeze({});

/**
 * Reads one message (at `off` of the checked datagram `dg`) of a (live, not abandoned) request's
 * answer: a reply part is collected in `p.replies` or `p.inPlace` (undefined: more to come); an
 * ack, NLMSG_DONE or NLMSG_OVERRUN ends it, with the kernel's error or a decode error, or
 * `interrupted` for a dump that ended with NLM_F_DUMP_INTR.
 */
export function answerOf(p: Pending, dg: Buffer, off: number): Outcome | undefined {
  const type = dg.readUInt16LE(off + 4);
  const flags = dg.readUInt16LE(off + 6);
  switch (type) {
    case NLMSG_NOOP:
      return undefined;
    case NLMSG_ERROR: {
      if (isPlainAckAt(dg, off)) return SUCCEEDED; // the common answer, read without objects
      try {
        const parsed = parseNlmsgerr(nlMsgAt(dg, off).payload, flags);
        return parsed.error !== 0 ? { error: new NetlinkError(parsed.error, p.op, parsed.extack) } : SUCCEEDED;
      } catch (err) {
        return { error: err };
      }
    }
    case NLMSG_DONE: {
      if (flags & NLM_F_DUMP_INTR) p.interrupted = true;
      try {
        const parsed = parseNlmsgDone(nlMsgAt(dg, off).payload, flags);
        if (parsed.error !== 0) return { error: new NetlinkError(parsed.error, p.op, parsed.extack) };
      } catch (err) {
        return { error: err };
      }
      return p.interrupted ? { interrupted: true } : SUCCEEDED;
    }
    case NLMSG_OVERRUN:
      return { error: new NetlinkError(osConstants.errno.ENOBUFS, p.op, { message: 'NLMSG_OVERRUN: data lost' }) };
    default:
      if (flags & NLM_F_DUMP_INTR) p.interrupted = true;
      if (p.inPlace) {
        const r = p.inPlace;
        r.bufs.push(dg);
        r.starts.push(off + NLMSG_HDRLEN);
        r.ends.push(off + dg.readUInt32LE(off));
        r.types.push(type);
      } else {
        p.replies.push(nlMsgAt(dg, off));
      }
      return undefined;
  }
}
