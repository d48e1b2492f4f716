#!/usr/bin/env node
/**
 * The `vmhost` command (bin of @vmhost/host). Everything but wiring to the process lives in
 * `cli/`; this file runs {@link main} only when executed directly, so importing it is
 * harmless. Run `vmhost --help` for the commands.
 * @module
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
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
  main(process.argv.slice(2), io, undefined, { signal: interrupt.signal, onHangup }).then(
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
