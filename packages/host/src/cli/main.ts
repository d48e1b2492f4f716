/**
 * `vmhost`'s {@link main}: parses the command line (args.ts), loads the host file, runs the
 * command (one module each under commands/) and reports errors (report.ts). The entry point
 * (`../cli.ts`) only wires it to the process. The engine is reached through {@link CliDeps}, so
 * tests run the whole CLI against fakes; its errors are recognised with `instanceof` (errors.ts
 * has no dependency on the engine).
 *
 * Exit codes: 0 success; 1 error; 2 usage error; 3 invalid host file; 4 apply/down failed and
 * undoing failed too (host half-applied); 130 interrupted by SIGINT/SIGTERM (apply undid what it
 * did; down stopped between steps). With `plan --detailed-exitcode`: 0 no changes, 2 changes
 * pending, 1 for every error (a usage error or an invalid file included), as terraform does.
 * @module
 */
import { resolve } from 'node:path';
import { ValidationError } from '@vmhost/net';
import { HostPlanStaleError } from '../errors.js';
import { fileSha256, isSavedPlanFile, netnsText, readSavedPlan, type SavedPlan } from '../engine/saved-plan.js';
import type { HostOptions, ResolvedHost } from '../types.js';
import { generalHelp, parseCommandLine, UsageError, version, VM_USAGE, type ParseResult } from './args.js';
import type { CliCtx } from './command.js';
import { COMMANDS } from './commands/index.js';
import { defaultDeps, EXIT, type CliDeps, type CliIO } from './deps.js';
import { faultCheckpoint } from './faults.js';
import { painter } from './format.js';
import { reportError, reportSpecError } from './report.js';

/** How {@link main} is run. */
export interface MainOptions {
  /** Aborted on SIGINT/SIGTERM by the entry point: apply and down stop between steps (exit 130). */
  signal?: AbortSignal;
  /** Registers what SIGHUP does (`vmhost run`: read the host file again); without it SIGHUP is not handled. */
  onHangup?: (listener: () => void) => void;
  /** Called with the command's name (`plan`, `vm start`, `run`, ...) just before the command runs: once its host file is read, if it has one. */
  onCommand?: (name: string) => void;
}

/**
 * Runs `vmhost` with `argv` (without node and the script) and returns the exit code.
 * @param io Where output goes; each call is one line.
 * @param deps The engine; tests pass fakes.
 * @param run The signal that interrupts apply/down.
 */
export async function main(argv: string[], io: CliIO, deps: CliDeps = defaultDeps, run: MainOptions = {}): Promise<number> {
  if (argv.length === 0) {
    for (const line of generalHelp().split('\n')) io.err(line);
    return EXIT.usage;
  }
  let result: ParseResult;
  try {
    result = parseCommandLine(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`vmhost: ${e.message}`);
    const c = e.command ? (COMMANDS[e.command] ?? null) : null;
    if (c) io.err(`Usage: vmhost ${c.usage}`);
    else if (e.command === 'vm') io.err(`Usage: ${VM_USAGE}`);
    else io.err('Usage: vmhost [global options] <command> [options] [args]');
    io.err(`Run 'vmhost ${e.command ? `${e.command} ` : ''}--help' for more.`);
    return errorExit(argv, EXIT.usage);
  }
  if (result.kind === 'help') {
    for (const line of result.text.split('\n')) io.out(line);
    return EXIT.ok;
  }
  if (result.kind === 'version') {
    io.out(`vmhost ${version()}`);
    return EXIT.ok;
  }
  const { command, values, args } = result.parsed;
  const options: HostOptions = {};
  const netns = values.netns;
  if (typeof netns === 'string') options.netns = netns.startsWith('/') ? { path: netns } : netns;
  const stateDir = values['state-dir'];
  if (typeof stateDir === 'string') options.stateDir = resolve(stateDir);
  const dataDir = values['data-dir'];
  if (typeof dataDir === 'string') options.dataDir = resolve(dataDir);
  if (run.signal) options.signal = run.signal;
  const ctx: CliCtx = {
    io,
    deps,
    json: values.json === true,
    debug: values.debug === true || process.env.VMHOST_DEBUG === '1',
    paint: painter(io.isTTY === true && !process.env.NO_COLOR),
    options,
  };
  if (run.onHangup) ctx.onHangup = run.onHangup;

  let file: string | undefined;
  try {
    const checkpoint = faultCheckpoint();
    if (checkpoint) options.checkpoint = checkpoint;
    if (command.file === 'none') {
      run.onCommand?.(command.name);
      return await command.run(ctx, { values, args });
    }
    file = command.file === 'arg' ? (args[0] ?? '') : typeof values.file === 'string' ? values.file : process.env.VMHOST_FILE || 'vmhost.yaml';
    // the vm commands' arguments: the VM's name (and a label)
    const rest = command.file === 'arg' ? args.slice(1) : args;
    // `apply PLANFILE`: the saved plan names the host file, which must be as it was
    const saved = command.name === 'apply' && isSavedPlanFile(file) ? savedPlanFor(file, options) : undefined;
    if (saved) file = saved.hostFile.path;
    let host: ResolvedHost;
    command.before?.(ctx);
    try {
      host = await deps.loadHostFile(file);
    } catch (e) {
      // HostSpecError, or another ValidationError of loading
      if (e instanceof ValidationError) return errorExit(argv, reportSpecError(ctx, file, e));
      throw e;
    }
    if (saved && fileSha256(file) !== saved.hostFile.sha256) throw new HostPlanStaleError([`the host file ${file} changed while it was read`]);
    run.onCommand?.(command.name);
    return await command.run(ctx, host, file, { values, args: rest, ...(saved ? { saved } : {}) });
  } catch (e) {
    return errorExit(argv, reportError(ctx, e, file, command.name));
  }
}

/**
 * The exit code of an error: with `--detailed-exitcode` anywhere on the command line (even one
 * that does not parse) every error is 1, so that 2 means nothing but "changes pending".
 */
function errorExit(argv: readonly string[], code: number): number {
  return argv.includes('--detailed-exitcode') ? EXIT.error : code;
}

/**
 * The saved plan `path` for `apply`, checked: made for the same `--netns` and `--state-dir`, and
 * its host file's bytes unchanged since.
 * @throws {ValidationError} for a file that is not a saved plan, or other options than the plan's.
 * @throws {HostPlanStaleError} when the host file changed (or is gone).
 */
function savedPlanFor(path: string, options: HostOptions): SavedPlan {
  const saved = readSavedPlan(path);
  const netns = netnsText(options.netns);
  if (netns !== saved.netns) throw new ValidationError('--netns', netns ?? '(none)', `differs from the saved plan's (${saved.netns ?? 'none'}): give the options the plan was made with`);
  if ((options.stateDir ?? null) !== saved.stateDir) throw new ValidationError('--state-dir', options.stateDir ?? '(default)', `differs from the saved plan's (${saved.stateDir ?? 'default'}): give the options the plan was made with`);
  let sha: string;
  try {
    sha = fileSha256(saved.hostFile.path);
  } catch (e) {
    throw new HostPlanStaleError([`the host file ${saved.hostFile.path} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`]);
  }
  if (sha !== saved.hostFile.sha256) throw new HostPlanStaleError([`the host file ${saved.hostFile.path} changed since the plan was made`]);
  return saved;
}
