/**
 * Errors of @vmhost/kvm. Every class derives from {@link VmhostError} (with a machine-readable
 * `code`); QMP failures derive from {@link QmpError}, VM lifecycle failures from {@link VmError}.
 *
 * ```
 * VmhostError
 * ├── QmpError
 * │   ├── QmpConnectError        socket not reachable in time, or QEMU exited while connecting
 * │   ├── QmpNegotiationError    bad greeting, or qmp_capabilities refused
 * │   ├── QmpProtocolError       bad JSON, a line over the size cap, a message of no known shape
 * │   ├── QmpCommandError        QEMU answered {"error": {class, desc}}; carries what was sent
 * │   ├── QmpTimeoutError        no reply / event within timeoutMs
 * │   ├── QmpAbortedError        the caller's AbortSignal fired
 * │   ├── QmpDisconnectedError   the connection ended while a command or a wait was pending
 * │   ├── BlockJobError          a block job failed or was cancelled
 * │   └── BlockJobBusyError      a block job was refused: another one holds the drive's nodes
 * └── VmError
 *     ├── VmAlreadyRunningError  start() on a VM whose QEMU is alive and answering
 *     ├── VmStartError           QEMU exited or failed during start(); has its stderr
 *     ├── DiskFormatError        an image's format is not the one given
 *     └── QemuImgError           qemu-img failed; has its stderr
 *         └── ImageLockedError   the image is in use (QEMU's image lock): nothing was changed
 * ```
 * @module
 */
import { VmhostError } from '@vmhost/net';

/** Base class of every QMP failure. */
export class QmpError extends VmhostError {}

/** The QMP socket could not be connected within the time allowed, or QEMU died meanwhile. */
export class QmpConnectError extends QmpError {
  /** The socket path. */
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('EQMP_CONNECT', `QMP ${path}: ${message}`, options);
    this.path = path;
  }
}

/** The greeting was not a QMP greeting, or capability negotiation failed. */
export class QmpNegotiationError extends QmpError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EQMP_NEGOTIATION', message, options);
  }
}

/** The peer sent something that is not QMP: bad JSON, an over-long line, a non-object. Fatal for the connection. */
export class QmpProtocolError extends QmpError {
  /** The first bytes of the offending line (at most 200 characters). */
  readonly excerpt: string;
  constructor(message: string, excerpt: string, options?: { cause?: unknown }) {
    super('EQMP_PROTOCOL', message, options);
    this.excerpt = excerpt.length > 200 ? `${excerpt.slice(0, 200)}...` : excerpt;
  }
}

/** QEMU answered a command with an error object. */
export class QmpCommandError extends QmpError {
  /** QMP error class, e.g. `'GenericError'`, `'CommandNotFound'`, `'DeviceNotFound'`. */
  readonly errorClass: string;
  /** QEMU's human-readable description. */
  readonly desc: string;
  /** The command that was sent. */
  readonly command: string;
  /** The arguments that were sent (undefined when none). */
  readonly arguments: Record<string, unknown> | undefined;
  constructor(command: string, args: Record<string, unknown> | undefined, errorClass: string, desc: string) {
    super('EQMP_COMMAND', `QMP ${command} failed: ${errorClass}: ${desc}`);
    this.command = command;
    this.arguments = args;
    this.errorClass = errorClass;
    this.desc = desc;
  }
}

/** A command's reply, or an awaited event, did not come within its time limit. */
export class QmpTimeoutError extends QmpError {
  /** The limit that passed, in milliseconds. */
  readonly timeoutMs: number;
  constructor(what: string, timeoutMs: number) {
    super('EQMP_TIMEOUT', `${what}: no answer within ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}

/** The caller aborted a command or a wait. `cause` is the signal's reason. */
export class QmpAbortedError extends QmpError {
  constructor(what: string, reason: unknown) {
    super('EQMP_ABORTED', `${what}: aborted`, { cause: reason });
  }
}

/** The connection ended (QEMU exited, the socket closed, or close() was called) while something was pending. */
export class QmpDisconnectedError extends QmpError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EQMP_DISCONNECTED', message, options);
  }
}

/** Base class of VM lifecycle failures. */
export class VmError extends VmhostError {}

/** start() found the VM already running (pidfile names a live QEMU whose QMP socket answers). */
export class VmAlreadyRunningError extends VmError {
  /** pid of the running QEMU. */
  readonly pid: number;
  constructor(name: string, pid: number) {
    super('EVM_ALREADY_RUNNING', `VM '${name}' is already running (pid ${pid})`);
    this.pid = pid;
  }
}

/** QEMU could not be started, exited during start(), or never came up. */
export class VmStartError extends VmError {
  /** What QEMU wrote on stderr (the last 64 KiB). */
  readonly stderr: string;
  /** Exit code, when it exited. */
  readonly exitCode: number | null;
  /** Signal that ended it, when one did. */
  readonly signal: string | null;
  constructor(message: string, details: { stderr: string; exitCode?: number | null; signal?: string | null; cause?: unknown }) {
    super('EVM_START', details.stderr.trim() ? `${message}\n--- qemu stderr ---\n${details.stderr.trim()}` : message, {
      cause: details.cause,
    });
    this.stderr = details.stderr;
    this.exitCode = details.exitCode ?? null;
    this.signal = details.signal ?? null;
  }
}

/** A block job ended with an error or was cancelled. */
export class BlockJobError extends QmpError {
  /** The job's id. */
  readonly jobId: string;
  constructor(jobId: string, message: string, options?: { cause?: unknown }) {
    super('EQMP_BLOCK_JOB', `block job ${jobId}: ${message}`, options);
    this.jobId = jobId;
  }
}

/** QEMU refused a block job (commit, snapshot) because another job holds the drive's nodes. Nothing was changed. */
export class BlockJobBusyError extends QmpError {
  /** The drive. */
  readonly device: string;
  constructor(device: string, message: string, options?: { cause?: unknown }) {
    super('EQMP_BLOCK_BUSY', `drive ${device}: ${message}`, options);
    this.device = device;
  }
}

/** An image is not in the format the caller gave (e.g. a qcow2 named as raw): refused before anything changed. */
export class DiskFormatError extends VmError {
  readonly file: string;
  /** The format given. */
  readonly expected: string;
  /** The format qemu-img found. */
  readonly actual: string;
  constructor(file: string, expected: string, actual: string) {
    super('EDISK_FORMAT', `${file} is ${actual}, not ${expected}`);
    this.file = file;
    this.expected = expected;
    this.actual = actual;
  }
}

/** `qemu-img` exited non-zero. */
export class QemuImgError extends VmError {
  /** The arguments given to qemu-img. */
  readonly args: readonly string[];
  readonly stderr: string;
  readonly exitCode: number | null;
  constructor(args: readonly string[], exitCode: number | null, stderr: string, code = 'EQEMU_IMG') {
    super(code, `qemu-img ${args.join(' ')} exited ${exitCode}: ${stderr.trim()}`);
    this.args = args;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** qemu-img could not take an image's lock: a running QEMU (or another qemu-img) uses it. Nothing was changed. */
export class ImageLockedError extends QemuImgError {
  constructor(args: readonly string[], exitCode: number | null, stderr: string) {
    super(args, exitCode, stderr, 'EDISK_LOCKED');
  }
}
