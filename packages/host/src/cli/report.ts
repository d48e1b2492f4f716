/**
 * How the `vmhost` command line reports: an invalid host file (exit 3), a failed apply or down
 * with what was undone (exit 1, or 4 when undoing failed too), any other error (exit 1; a refused
 * apply's conflicts in full with --json), stack
 * traces with --debug, and the progress lines of apply and down.
 * @module
 */
import { ValidationError } from '@vmhost/net';
import { HostAbortedError, HostApplyError, HostOwnerError, HostPlanStaleError, HostSpecError } from '../errors.js';
import type { ProgressEvent, Step } from '../types.js';
import type { CliCtx } from './command.js';
import { EXIT } from './deps.js';
import { actionSymbol, describeError, errorCode, errorName, formatMs, plural, stepJson } from './format.js';

/** Reports an invalid host file (every problem); exit 3. */
export function reportSpecError(ctx: CliCtx, file: string, e: ValidationError): number {
  const problems: Array<{ path: string; value?: unknown; message: string }> = e instanceof HostSpecError ? e.problems : [{ path: e.field, message: e.message }];
  if (ctx.json) {
    const error: Record<string, unknown> = { name: e.name, message: e.message, file };
    error.field = e.field;
    error.problems = problems.map((p) => ({ path: p.path, message: p.message, ...(p.value !== undefined ? { value: p.value } : {}) }));
    ctx.io.out(JSON.stringify({ error }, null, 2));
  } else {
    for (const p of problems) ctx.io.err(p.path ? `${file}: ${p.path}: ${p.message}` : `${file}: ${p.message}`);
    ctx.io.err(`vmhost: ${file} is not a valid host file (${plural(problems.length, 'problem')})`);
  }
  return EXIT.spec;
}

/** Reports any error of a command (a failed apply in full); the exit code. */
export function reportError(ctx: CliCtx, e: unknown, file: string | undefined, command: string): number {
  if (e instanceof HostApplyError) return reportApplyError(ctx, e, file ?? '', command);
  if (e instanceof HostAbortedError) return reportAborted(ctx, e, file ?? '');
  if (ctx.json) {
    const error: Record<string, unknown> = { name: errorName(e), message: describeError(e) };
    const code = errorCode(e);
    if (code !== undefined) error.code = code;
    if (e instanceof ValidationError) error.field = e.field;
    if (e instanceof HostOwnerError) error.conflicts = e.conflicts;
    if (e instanceof HostPlanStaleError) error.differences = e.differences;
    ctx.io.out(JSON.stringify({ error }, null, 2));
  } else if (e instanceof HostPlanStaleError) {
    ctx.io.err(`vmhost: ${command}: the saved plan is stale (the host or its file changed since it was made); nothing was changed:`);
    for (const d of e.differences) ctx.io.err(`  ${d}`);
    ctx.io.err(`vmhost: make a new plan (vmhost plan --out FILE) and review it.`);
  } else {
    ctx.io.err(`vmhost: ${command}: ${describeError(e)}`);
  }
  printStack(ctx, e);
  return EXIT.error;
}

function printStack(ctx: CliCtx, e: unknown): void {
  if (!ctx.debug) return;
  let cur: unknown = e;
  for (let depth = 0; cur !== undefined && depth < 5; depth++) {
    const stack = cur instanceof Error ? (cur.stack ?? String(cur)) : String(cur);
    ctx.io.err(depth === 0 ? stack : `Caused by: ${stack}`);
    cur = cur instanceof Error ? cur.cause : undefined;
  }
}

/** Numbers the steps as their events arrive (independent of whether `index` counts from 0 or 1). */
export class ProgressPrinter {
  private count = 0;
  private readonly positions = new Map<string, number>();
  constructor(private readonly ctx: CliCtx) {}

  position(step: Step): number | undefined {
    return this.positions.get(step.id);
  }

  private place(step: Step): number {
    let pos = this.positions.get(step.id);
    if (pos === undefined) {
      pos = ++this.count;
      this.positions.set(step.id, pos);
    }
    return pos;
  }

  readonly onProgress = (ev: ProgressEvent): void => {
    const { io, paint } = this.ctx;
    switch (ev.type) {
      case 'step-start':
        this.place(ev.step);
        break;
      case 'step-done':
        io.err(`[${this.place(ev.step)}/${ev.total}] ${ev.step.description} ... ${paint('done', 'green')} (${formatMs(ev.ms)})`);
        break;
      case 'step-failed':
        io.err(`[${this.place(ev.step)}/${ev.total}] ${ev.step.description} ... ${paint('FAILED', 'red')}: ${describeError(ev.error)}`);
        break;
      case 'undo-start':
        break;
      case 'undo-done':
        io.err(`undo: ${ev.step.description} ... ${paint('done', 'green')}`);
        break;
      case 'undo-failed':
        io.err(`undo: ${ev.step.description} ... ${paint('FAILED', 'red')}: ${describeError(ev.error)}`);
        break;
      case 'notice':
        io.err(`${paint('note', 'yellow')}: ${ev.message}`);
        break;
    }
  };
}

/** Reports a failed apply or down: the failing step, the error, what was undone; exit 1, or 4 when undoing failed too. */
export function reportApplyError(ctx: CliCtx, e: HostApplyError, file: string, command: string): number {
  const undoFailed = e.undoErrors.length > 0;
  const code = undoFailed ? EXIT.undoFailed : EXIT.error;
  if (ctx.json) {
    const error: Record<string, unknown> = {
      name: e.name,
      message: describeError(e.cause),
      step: stepJson(e.step),
      undone: e.undone.map(stepJson),
      undoErrors: e.undoErrors.map((u) => ({ step: stepJson(u.step), message: describeError(u.error) })),
      halfApplied: undoFailed,
    };
    const c = errorCode(e.cause);
    if (c !== undefined) error.code = c;
    ctx.io.out(JSON.stringify({ error }, null, 2));
    printStack(ctx, e.cause ?? e);
    return code;
  }
  const { io, paint } = ctx;
  const pos = ctx.progress?.position(e.step);
  io.err(`vmhost: ${command} ${paint('failed', 'red')} at step ${pos !== undefined ? `${pos} ` : ''}(${e.step.id}): ${e.step.description}`);
  io.err(`  error: ${describeError(e.cause)}`);
  const inner = e.cause instanceof Error ? e.cause.cause : undefined;
  if (inner !== undefined && describeError(inner) !== describeError(e.cause)) io.err(`  caused by: ${describeError(inner)}`);
  if (e.undone.length === 0) io.err('  nothing had to be undone');
  else {
    io.err(`  undone (${plural(e.undone.length, 'step')}):`);
    for (const s of e.undone) io.err(`    ${actionSymbol(s.action)} ${s.description}`);
  }
  if (undoFailed) {
    io.err(`  ${paint('undo failed', 'red')} for ${plural(e.undoErrors.length, 'step')}:`);
    for (const u of e.undoErrors) io.err(`    ${u.step.description}: ${describeError(u.error)}`);
    io.err(`vmhost: the host may be half-applied. Check it with 'vmhost status ${file}', then run 'vmhost apply ${file}' or 'vmhost down ${file}'.`);
  } else {
    io.err(`vmhost: the host is as it was before this ${command}.`);
  }
  printStack(ctx, e.cause ?? e);
  return code;
}

/** Reports an apply or down stopped by SIGINT/SIGTERM: what was undone (apply) or done (down); exit 130. */
export function reportAborted(ctx: CliCtx, e: HostAbortedError, file: string): number {
  if (ctx.json) {
    const error = {
      name: e.name,
      code: e.code,
      message: e.message,
      command: e.command,
      done: e.done.map(stepJson),
      undone: e.undone.map(stepJson),
      undoErrors: e.undoErrors.map((u) => ({ step: stepJson(u.step), message: describeError(u.error) })),
    };
    ctx.io.out(JSON.stringify({ error }, null, 2));
    return EXIT.interrupted;
  }
  const { io, paint } = ctx;
  io.err(`vmhost: ${e.command} ${paint('interrupted', 'yellow')}`);
  if (e.command === 'apply') {
    if (e.undone.length === 0 && e.undoErrors.length === 0) io.err('  nothing had to be undone');
    else if (e.undone.length) {
      io.err(`  undone (${plural(e.undone.length, 'step')}):`);
      for (const s of e.undone) io.err(`    ${actionSymbol(s.action)} ${s.description}`);
    }
    if (e.undoErrors.length) {
      io.err(`  ${paint('undo failed', 'red')} for ${plural(e.undoErrors.length, 'step')}:`);
      for (const u of e.undoErrors) io.err(`    ${u.step.description}: ${describeError(u.error)}`);
      io.err(`vmhost: the host may be half-applied. Check it with 'vmhost status ${file}', then run 'vmhost apply ${file}' or 'vmhost down ${file}'.`);
    } else io.err(`vmhost: the host is as it was before this apply.`);
  } else if (e.command === 'down') {
    io.err(`  ${plural(e.done.length, 'step')} done; the state file records the rest: run 'vmhost down ${file}' again to finish.`);
  }
  return EXIT.interrupted;
}
