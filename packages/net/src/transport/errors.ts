/**
 * Errors of the netlink transport: the kernel's refusal of a request ({@link NetlinkError}, with
 * errno name and extended-ack text), undecodable bytes ({@link NetlinkDecodeError}) and requests
 * cut short by `close()` ({@link NetlinkClosedError}).
 * @module
 */
import { constants as osConstants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import { VmhostError } from '../errors.js';

/** glibc's strerror() texts for the errors rtnetlink answers most (libuv's wording differs). */
const STRERROR: Record<string, string> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  ESRCH: 'No such process',
  EINTR: 'Interrupted system call',
  EIO: 'Input/output error',
  ENXIO: 'No such device or address',
  E2BIG: 'Argument list too long',
  EBADF: 'Bad file descriptor',
  EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied',
  EFAULT: 'Bad address',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  EXDEV: 'Invalid cross-device link',
  ENODEV: 'No such device',
  ENOTDIR: 'Not a directory',
  EINVAL: 'Invalid argument',
  ENFILE: 'Too many open files in system',
  EMFILE: 'Too many open files',
  ENOSPC: 'No space left on device',
  ERANGE: 'Numerical result out of range',
  EDEADLK: 'Resource deadlock avoided',
  ENAMETOOLONG: 'File name too long',
  ENOSYS: 'Function not implemented',
  ENOTEMPTY: 'Directory not empty',
  ELOOP: 'Too many levels of symbolic links',
  ENOMSG: 'No message of desired type',
  ENODATA: 'No data available',
  ENOLINK: 'Link has been severed',
  EPROTO: 'Protocol error',
  EOVERFLOW: 'Value too large for defined data type',
  ENOTUNIQ: 'Name not unique on network',
  ENOTSOCK: 'Socket operation on non-socket',
  EMSGSIZE: 'Message too long',
  EPROTOTYPE: 'Protocol wrong type for socket',
  ENOPROTOOPT: 'Protocol not available',
  EPROTONOSUPPORT: 'Protocol not supported',
  EOPNOTSUPP: 'Operation not supported',
  EPFNOSUPPORT: 'Protocol family not supported',
  EAFNOSUPPORT: 'Address family not supported by protocol',
  EADDRINUSE: 'Address already in use',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  ENETDOWN: 'Network is down',
  ENETUNREACH: 'Network is unreachable',
  ENOBUFS: 'No buffer space available',
  ENOTCONN: 'Transport endpoint is not connected',
  ETIMEDOUT: 'Connection timed out',
  ECONNREFUSED: 'Connection refused',
  EHOSTUNREACH: 'No route to host',
  EALREADY: 'Operation already in progress',
  EINPROGRESS: 'Operation now in progress',
  EDQUOT: 'Disk quota exceeded',
  ECANCELED: 'Operation canceled',
};

/** Names the kernel uses where two names share a number. */
const PREFERRED = new Set(['EOPNOTSUPP', 'EAGAIN', 'EDEADLK']);

let byNumber: Map<number, string> | undefined;

/** The errno name of a (positive) errno number, e.g. 17 → 'EEXIST'; 'E' + number when unknown. */
export function errnoName(errno: number): string {
  if (!byNumber) {
    byNumber = new Map();
    for (const [name, num] of Object.entries(osConstants.errno)) {
      if (!byNumber.has(num) || PREFERRED.has(name)) byNumber.set(num, name);
    }
  }
  return byNumber.get(errno) ?? `E${errno}`;
}

/** The strerror()-style description of an errno number, e.g. 17 → 'File exists'. */
export function errnoMessage(errno: number): string {
  const name = errnoName(errno);
  const known = STRERROR[name];
  if (known) return known;
  const uv = getSystemErrorMap().get(-errno);
  if (uv) return uv[1].charAt(0).toUpperCase() + uv[1].slice(1);
  return `Unknown error ${errno}`;
}

/**
 * The kernel refused a netlink request (an NLMSG_ERROR with a non-zero error, or a dump that
 * ended in error). `code` is the errno name; `extack` the kernel's extended-ack message.
 *
 * Message format: `"<op>: <CODE> (<strerror>): <extack>"`, e.g.
 * `links.add veth0: EEXIST (File exists)`.
 */
export class NetlinkError extends VmhostError {
  /** Positive errno number, e.g. 17. */
  readonly errno: number;
  /** What was being done, e.g. `'links.add veth0'` or `'RTM_NEWLINK'`. */
  readonly op: string;
  /** The kernel's extended-ack message (NLMSGERR_ATTR_MSG), if it sent one. */
  readonly extack?: string;
  /** Byte offset of the offending attribute in the request (NLMSGERR_ATTR_OFFS), if given. */
  readonly extackOffset?: number;
  /** Type of a missing required attribute (NLMSGERR_ATTR_MISS_TYPE), if given. */
  readonly missingType?: number;
  constructor(
    errno: number,
    op: string,
    extack?: { message?: string; offset?: number; missingType?: number },
    options?: { cause?: unknown; detail?: string },
  ) {
    const code = errnoName(errno);
    let msg = `${op}: ${code} (${errnoMessage(errno)})`;
    if (extack?.message) msg += `: ${extack.message}`;
    if (options?.detail) msg += ` [${options.detail}]`;
    super(code, msg, options?.cause === undefined ? undefined : { cause: options.cause });
    this.errno = errno;
    this.op = op;
    if (extack?.message !== undefined) this.extack = extack.message;
    if (extack?.offset !== undefined) this.extackOffset = extack.offset;
    if (extack?.missingType !== undefined) this.missingType = extack.missingType;
  }
}

/**
 * A dump kept being interrupted (NLM_F_DUMP_INTR: the table changed while it was read) and was
 * retried as often as allowed. `code` is `'ENETLINK_DUMP_INTR'`; `errno` is EINTR.
 */
export class NetlinkDumpInterruptedError extends NetlinkError {
  /** How many times the dump was tried. */
  readonly attempts: number;
  constructor(op: string, attempts: number) {
    super(osConstants.errno.EINTR, op, { message: `dump interrupted ${attempts} times (NLM_F_DUMP_INTR); the table kept changing` });
    Object.defineProperty(this, 'code', { value: 'ENETLINK_DUMP_INTR', enumerable: true });
    this.attempts = attempts;
  }
}

/** Bytes from the kernel (or given to a decoder) are not well-formed netlink. `offset` says where. */
export class NetlinkDecodeError extends VmhostError {
  /** Byte offset of the problem inside the buffer that was decoded. */
  readonly offset: number;
  constructor(message: string, offset: number) {
    super('ENETLINK_DECODE', `netlink decode: ${message} (at byte ${offset})`);
    this.offset = offset;
  }
}

/** The socket was closed while the request was pending (or before it was made). */
export class NetlinkClosedError extends VmhostError {
  /** The request that was cut short. */
  readonly op: string;
  constructor(op: string) {
    super('ENETLINK_CLOSED', `${op}: the netlink socket was closed`);
    this.op = op;
  }
}

/** A request ran out of its `timeoutMs`. `code` is `'ENETLINK_TIMEOUT'` (vmhost's own, not the errno ETIMEDOUT). */
export class NetlinkTimeoutError extends VmhostError {
  /** The request that timed out. */
  readonly op: string;
  /** The limit that passed. */
  readonly timeoutMs: number;
  constructor(op: string, timeoutMs: number) {
    super('ENETLINK_TIMEOUT', `${op}: no answer from the kernel within ${timeoutMs} ms`);
    this.op = op;
    this.timeoutMs = timeoutMs;
  }
}
