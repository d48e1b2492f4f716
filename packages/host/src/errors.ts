/**
 * Every error class of @vmhost/host, in one module without dependencies but @vmhost/net's base
 * classes, so that the CLI (and users) can test them with `instanceof` without loading the engine.
 * Their codes are listed in docs/errors.md.
 *
 * ```
 * VmhostError (@vmhost/net)
 * ├── ValidationError (@vmhost/net)       EVALIDATION
 * │   ├── HostSpecError                   EVALIDATION: the host file is invalid (every problem)
 * │   ├── HostPreconditionError           EHOST_PRECONDITION: the host cannot be applied as described
 * │   └── HostDiskLabelError              EHOST_DISK_LABEL: no such snapshot (or deleted, or taken twice)
 * ├── HostNoConsoleError                 EHOST_NO_CONSOLE: a VM has not written a console log yet
 * ├── HostApplyError                      EHOST_STEP / EHOST_UNDO: a step of apply or down failed
 * ├── HostAbortedError                    EHOST_ABORTED: plan/apply/down stopped by its AbortSignal (SIGINT)
 * ├── HostStateError                      EHOST_STATE_CORRUPT / _VERSION / _UNSAFE: the state file or directory
 * ├── HostBusyError                       EHOST_BUSY: another vmhost changes this host
 * ├── HostDiskError                       EHOST_DISK_RECORD / _MISMATCH / _QMP: a VM's disk chain
 * ├── HostOwnerError                      EHOST_OWNER: something the host file wants is another host's, or not vmhost's
 * ├── GuestBuildError                     EHOST_GUEST_BUILD: the test guest could not be built
 * └── ServiceError
 *     ├── DnsmasqError                    EDNSMASQ_SPAWN / _EXIT / _TIMEOUT / _STOP / _FILE
 *     └── ProxyServiceError               EPROXY_SPAWN / _EXIT / _TIMEOUT / _STOP / _FILE / _STATS
 * ```
 * @module
 */
import { ValidationError, VmhostError } from '@vmhost/net';
import type { Conflict, Step } from './types.js';

// ------------------------------------------------------------------------------- the host file

/** One problem of a host file. */
export interface HostSpecProblem {
  /** Path of the bad field (`vms[1].forwards[0].port`, `dhcp.range[1]`); `''` for the file itself (syntax errors). */
  path: string;
  /** The rejected value as given (`undefined` for a missing field). */
  value: unknown;
  /** What is wrong, without the path and value. */
  message: string;
}

const MAX_VALUE_TEXT = 80;

/**
 * Characters JSON.stringify leaves as they are but a terminal or a reader should not see raw:
 * C1 controls (U+009B starts an escape sequence on some terminals), DEL, invisible format
 * characters and bidirectional overrides (text that reads as other text), lone surrogates.
 */
const UNSAFE_TEXT = /[\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]|\p{Cs}/gu;

/** A value for a message: JSON (with every control and invisible character escaped), cut at 80 characters. */
export function formatValue(v: unknown): string {
  let s: string;
  try {
    // NaN and the infinities as themselves (JSON writes them as null)
    s = typeof v === 'number' && !Number.isFinite(v) ? String(v) : typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
  } catch {
    // cyclic, too deep, or a BigInt: a short description, never the whole value
    s = Array.isArray(v) ? `[a list of ${v.length}]` : typeof v === 'object' && v !== null ? '{a mapping}' : String(v);
  }
  const cut = s.length > MAX_VALUE_TEXT ? `${s.slice(0, MAX_VALUE_TEXT - 3)}...` : s;
  return cut.replace(UNSAFE_TEXT, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `path: value: message` of one problem (or its message alone, for the file itself). */
export function problemLine(p: HostSpecProblem): string {
  if (p.path === '') return p.message;
  return p.value === undefined ? `${p.path}: ${p.message}` : `${p.path}: ${formatValue(p.value)}: ${p.message}`;
}

/**
 * A host file was rejected. `field`, `value` and the first line of the message are those of the
 * first problem; {@link HostSpecError.problems} lists all of them, in document order (checks that
 * compare fields, such as duplicate addresses, name the later field and point to the earlier one).
 */
export class HostSpecError extends ValidationError {
  /** Every problem found (at least one). */
  readonly problems: HostSpecProblem[];
  /** The file (or other source) the host file came from, when known. */
  readonly source: string | undefined;

  /**
   * @param problems At least one problem.
   * @param source Where the host file came from (a path), for the message.
   */
  constructor(problems: readonly HostSpecProblem[], source?: string) {
    if (problems.length === 0) throw new TypeError('HostSpecError needs at least one problem');
    const first = problems[0]!;
    super(first.path, first.value, first.message);
    this.problems = problems.map((p) => ({ ...p }));
    this.source = source;
    const head = `invalid host file${source === undefined ? '' : ` ${source}`}`;
    this.message =
      problems.length === 1
        ? `${head}: ${problemLine(first)}`
        : `${head} (${problems.length} problems):\n${problems.map((p) => `  ${problemLine(p)}`).join('\n')}`;
  }
}

/**
 * The host cannot be applied (or a VM operation done) as described: a missing uplink, kernel file
 * or TAP. Nothing was changed. `field` and `value` name what is missing.
 */
export class HostPreconditionError extends ValidationError {
  constructor(field: string, value: unknown, reason: string) {
    super(field, value, reason, 'EHOST_PRECONDITION');
  }
}

/** A VM has no console log yet (it has not been started, or has not written to its console). */
export class HostNoConsoleError extends VmhostError {
  /** The console log file. */
  readonly file: string;
  constructor(vm: string, file: string) {
    super('EHOST_NO_CONSOLE', `vm ${vm} has no console log yet (${file})`);
    this.file = file;
  }
}

// ------------------------------------------------------------------------------- the engine

/**
 * A step of `apply` (or `down`) failed. The steps before it were undone in reverse (`undone`);
 * `undoErrors` lists undo steps that failed too (then the host may be half-applied: the state
 * file still records what is left, and `down` removes it).
 */
export class HostApplyError extends VmhostError {
  /** The step that failed. */
  readonly step: Step;
  /** Steps undone after the failure, in the order they were undone. */
  readonly undone: Step[];
  /** Undo steps that failed. */
  readonly undoErrors: Array<{ step: Step; error: unknown }>;
  constructor(step: Step, cause: unknown, undone: Step[], undoErrors: Array<{ step: Step; error: unknown }>) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(
      undoErrors.length ? 'EHOST_UNDO' : 'EHOST_STEP',
      `step "${step.description}" failed: ${why}` +
        (undoErrors.length ? `; undoing ${undoErrors.length} step(s) failed too: ${undoErrors.map((u) => u.step.description).join(', ')}` : `; ${undone.length} earlier step(s) undone`),
      { cause },
    );
    this.step = step;
    this.undone = undone;
    this.undoErrors = undoErrors;
  }
}

/** The codes of {@link HostStateError}. */
export type HostStateErrorCode = 'EHOST_STATE_CORRUPT' | 'EHOST_STATE_VERSION' | 'EHOST_STATE_UNSAFE';

/**
 * The state file or the state directory cannot be trusted or used. `EHOST_STATE_CORRUPT`: the
 * state file is not a well-formed vmhost state file (truncated, not JSON, an entry of an unknown
 * kind, a field of the wrong type or an unknown field); `apply`, `down` and `vmhost recover` move
 * it aside and rebuild the record from the live system's owner marks. `EHOST_STATE_VERSION`: a
 * state file of another version. `EHOST_STATE_UNSAFE`: the state directory, one of its parents,
 * or a file in it is owned by another user, writable by others, or a symlink where none may be.
 * `file` names the path concerned; the message says what is wrong with it.
 */
export class HostStateError extends VmhostError {
  /** The state file (or the directory or file found unsafe). */
  readonly file: string;
  declare readonly code: HostStateErrorCode;
  constructor(file: string, why: string, options: { code?: HostStateErrorCode; cause?: unknown } = {}) {
    super(options.code ?? 'EHOST_STATE_CORRUPT', `${file}: ${why}`, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.file = file;
  }
}

/**
 * `plan`, `apply` or `down` stopped because its `signal` was aborted (the CLI aborts it on SIGINT
 * or SIGTERM; exit 130). apply finishes the step it is in, then undoes the steps this run did, in
 * reverse (`undone`; `undoErrors` lists undo steps that failed). down finishes the step it is in
 * and stops: what it removed (`done`) stays removed, the state file still records the rest, and
 * running down again finishes it. plan changes nothing.
 */
export class HostAbortedError extends VmhostError {
  /** The command that was stopped. */
  readonly command: 'plan' | 'apply' | 'down';
  /** Steps carried out before the abort (for apply: and then undone, unless in `undoErrors`). */
  readonly done: Step[];
  /** apply: steps undone after the abort, in the order they were undone. */
  readonly undone: Step[];
  /** apply: undo steps that failed. */
  readonly undoErrors: Array<{ step: Step; error: unknown }>;
  constructor(command: 'plan' | 'apply' | 'down', done: Step[], undone: Step[], undoErrors: Array<{ step: Step; error: unknown }>, reason?: unknown) {
    const what =
      command === 'apply'
        ? `${undone.length} step(s) undone${undoErrors.length ? `; undoing ${undoErrors.length} step(s) failed: ${undoErrors.map((u) => u.step.description).join(', ')}` : ''}`
        : command === 'down'
          ? `${done.length} step(s) done; run down again to finish`
          : 'nothing was changed';
    super('EHOST_ABORTED', `${command} interrupted${reason instanceof Error ? ` (${reason.message})` : typeof reason === 'string' ? ` (${reason})` : ''}: ${what}`, reason !== undefined ? { cause: reason } : undefined);
    this.command = command;
    this.done = done;
    this.undone = undone;
    this.undoErrors = undoErrors;
  }
}

/** Another vmhost process is applying or tearing down this host (its lock file names it). */
export class HostBusyError extends VmhostError {
  /** The lock file. */
  readonly file: string;
  /** The pid holding the lock, when known. */
  readonly pid: number | undefined;
  constructor(file: string, pid?: number) {
    super('EHOST_BUSY', pid !== undefined ? `another vmhost (pid ${pid}) is changing this host (${file})` : `cannot lock ${file}`);
    this.file = file;
    this.pid = pid;
  }
}

/**
 * apply refused: something the host file wants exists already and belongs to another host
 * (another host file's `name`: its owner mark is on it, or its state file records it), or was not
 * created by vmhost and the host file does not adopt it. Nothing was changed. `conflicts` lists
 * each, with its owner (null: not created by vmhost).
 */
export class HostOwnerError extends VmhostError {
  /** What is in the way, with its owner. */
  readonly conflicts: Conflict[];
  constructor(conflicts: readonly Conflict[]) {
    const lines = conflicts.map((c) => c.message);
    super('EHOST_OWNER', conflicts.length === 1 ? lines[0]! : `${conflicts.length} conflicts: ${lines.join('; ')}`);
    this.conflicts = conflicts.map((c) => ({ ...c }));
  }
}

/**
 * `vmhost apply` of a saved plan (`plan --out`) refused, nothing changed: the host or the host
 * file has moved since the plan was made. `differences` says how (steps that appeared, went away
 * or changed). Make a new plan and review it.
 */
export class HostPlanStaleError extends VmhostError {
  /** One line per difference between the saved plan and what apply would do now. */
  readonly differences: string[];
  constructor(differences: readonly string[]) {
    super('EHOST_PLAN_STALE', `the saved plan is stale (the host or its file changed since it was made): ${differences.slice(0, 5).join('; ')}${differences.length > 5 ? `; and ${differences.length - 5} more` : ''}`);
    this.differences = [...differences];
  }
}

// ------------------------------------------------------------------------------- disk chains

/** The codes of {@link HostDiskError}. */
export type HostDiskErrorCode = 'EHOST_DISK_RECORD' | 'EHOST_DISK_MISMATCH' | 'EHOST_DISK_QMP';

/**
 * A VM's disk chain cannot be used as recorded. `EHOST_DISK_RECORD`: its chain record (`file`) is
 * not a well-formed record (never moved aside or rebuilt: it is the only map of the VM's data).
 * `EHOST_DISK_MISMATCH`: the record does not match the host file (another base or file for a
 * disk that has overlays) or the files (an image missing, or its backing image not the recorded
 * one); nothing was started or changed. `EHOST_DISK_QMP`: the VM runs but its QMP socket is held
 * by another client, so a live disk operation (or finishing an interrupted one) cannot be done now.
 */
export class HostDiskError extends VmhostError {
  /** The chain record, or the image concerned. */
  readonly file: string;
  declare readonly code: HostDiskErrorCode;
  constructor(code: HostDiskErrorCode, file: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.file = file;
  }
}

/**
 * A snapshot label was refused before anything was changed (`field` is `label`): no such
 * snapshot of the VM (the message lists those it has, and says when and how a deleted one went),
 * or `vm snapshot --name` with a label the VM already has.
 */
export class HostDiskLabelError extends ValidationError {
  constructor(label: unknown, reason: string) {
    super('label', label, reason, 'EHOST_DISK_LABEL');
  }
}

// ------------------------------------------------------------------------------- services

/**
 * A service failed to start (it exited early, or was not ready in time) or to stop. Each service
 * has its own subclass ({@link DnsmasqError}, {@link ProxyServiceError}) and codes.
 */
export class ServiceError extends VmhostError {
  /** The service's exit code, when it exited; null when killed by a signal or still running. */
  readonly exitCode: number | null;
  /** The signal that ended it, if any. */
  readonly signal: NodeJS.Signals | null;
  /** The end of what the service wrote to its output files (may be empty); appended to the message. */
  readonly stderr: string;
  constructor(code: string, message: string, details: { exitCode?: number | null; signal?: NodeJS.Signals | null; stderr?: string; cause?: unknown } = {}) {
    const stderr = details.stderr ?? '';
    super(code, stderr.trim() ? `${message}: ${stderr.trim()}` : message, details.cause !== undefined ? { cause: details.cause } : undefined);
    this.exitCode = details.exitCode ?? null;
    this.signal = details.signal ?? null;
    this.stderr = stderr;
  }
}

/**
 * dnsmasq failed to start or stop. Codes: `EDNSMASQ_SPAWN` (could not be started),
 * `EDNSMASQ_EXIT` (exited during startup; `exitCode`, `stderr` hold its output and log excerpt),
 * `EDNSMASQ_TIMEOUT` (not ready in time), `EDNSMASQ_STOP` (survived SIGKILL), `EDNSMASQ_FILE` (a
 * file of its directory is a symbolic link, a FIFO, hard-linked, or the directory is not ours:
 * nothing was written through it).
 */
export class DnsmasqError extends ServiceError {}

/**
 * The IPv6 proxy service failed to start (`EPROXY_SPAWN`, `EPROXY_EXIT`, `EPROXY_TIMEOUT`), to stop
 * (`EPROXY_STOP`), found a file of its directory unusable (`EPROXY_FILE`: a planted link, ...), or
 * gave no stats (`EPROXY_STATS`).
 */
export class ProxyServiceError extends ServiceError {}

// ------------------------------------------------------------------------------- the test guest

/** Building the test guest failed (`EHOST_GUEST_BUILD`): a program failed or a part is missing. */
export class GuestBuildError extends VmhostError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EHOST_GUEST_BUILD', `test guest: ${message}`, options);
  }
}
