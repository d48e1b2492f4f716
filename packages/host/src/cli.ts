#!/usr/bin/env node
/**
 * The `vmhost` command (bin of @vmhost/host). Everything but wiring to the process lives in
 * `cli/`; this file runs {@link main} only when executed directly, so importing it is
 * harmless. Run `vmhost --help` for the commands.
 * @module
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { main } from './cli/index.js';

export { main, defaultDeps, type CliDeps, type CliIO } from './cli/index.js';

/** Whether this module is the script node was started with (also through the npm bin symlink). */
function executedDirectly(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

/** The commands that run for long or do heavy work (the service, the demo, a followed console, building a guest): V8 optimizes their hot code as usual. */
const LONG_RUNNING: ReadonlySet<string> = new Set(['run', 'demo', 'vm console', 'guest build']);

/**
 * V8 optimizes a function with TurboFan once it has run for an "interrupt budget" of bytecode
 * (~66,000 by default). A one-shot command (plan, apply, down, status, ...) runs most of its
 * functions a few hundred times, then exits: compiling them costs more CPU, on the main thread
 * and on background threads that compete with the command's own children (iptables-save, ...),
 * than their optimized code saves. For those commands, once the host file is read, the budget is
 * raised fifteenfold, so that only the truly hot loops are optimized: the no-op plan of a 300-VM
 * host takes ~12 % less wall time and ~25 % less CPU, and no command of 300 or 1,000 VMs is
 * slower (bench/host-scale.ts; docs/host-scale.md). The service and the other long runs keep
 * V8's defaults.
 */
function tuneJit(command: string): void {
  if (!LONG_RUNNING.has(command)) setFlagsFromString('--interrupt-budget=1000000');
}

if (executedDirectly()) {
  // `vmhost status | head` closes the pipe early: that is not an error.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
  const io = {
    out: (s: string): void => void process.stdout.write(`${s}\n`),
    err: (s: string): void => void process.stderr.write(`${s}\n`),
    isTTY: process.stdout.isTTY === true,
  };
  // SIGINT (Ctrl-C) and SIGTERM: apply and down finish the step under way, then apply undoes what
  // it did and down stops; exit 130. A second signal is only acknowledged: undoing is what keeps
  // the host consistent, and QEMU and the services run in their own sessions, untouched.
  const interrupt = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (!interrupt.signal.aborted) {
        process.stderr.write(`vmhost: ${sig}: finishing the step under way, then undoing (apply) or stopping (down)\n`);
        interrupt.abort(new Error(`interrupted by ${sig}`));
      } else process.stderr.write(`vmhost: ${sig} again: still finishing; kill -9 leaves a record the next run completes\n`);
    });
  }
  // SIGHUP is handled only by the commands that ask (vmhost run: read the host file again)
  const onHangup = (listener: () => void): void => void process.on('SIGHUP', listener);
  main(process.argv.slice(2), io, undefined, { signal: interrupt.signal, onHangup, onCommand: tuneJit }).then(
    (code) => {
      process.exitCode = code;
      // Engine handles (sockets, timers) must not keep the command alive once it is done.
      process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
    },
    (e: unknown) => {
      process.stderr.write(`vmhost: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`, () => process.exit(1));
    },
  );
}
