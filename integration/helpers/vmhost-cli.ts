// The real `vmhost` CLI of this checkout (its TypeScript source through tsx, as `npm run` would),
// spawned with an argument array: exit code, stdout and stderr.
import { spawn } from 'node:child_process';
import { join } from 'node:path';

/** The repository's root. */
export const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'packages', 'host', 'src', 'cli.ts');

/** Runs `vmhost ARGS` (cwd: the repository) and resolves when it exits. */
export function vmhost(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=vmhost-source', '--import', 'tsx', CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
