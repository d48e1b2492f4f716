// The real `vmhost` command line (packages/host/src/cli.ts through tsx), as a child process:
// for the tests that prove what the CLI does as a whole (exit codes, signals, kills).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

/** The repository's root. */
export const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'packages', 'host', 'src', 'cli.ts');

/** How a `vmhost` run ended. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts `vmhost ARGS` (environment `env` added to this process's); `done` resolves when it ends. */
export function startVmhost(args: string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, ['--conditions=vmhost-source', '--import', 'tsx', CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

/** Runs `vmhost ARGS` to its end. */
export function vmhost(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return startVmhost(args, env).done;
}
