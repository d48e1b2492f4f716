/**
 * `vmhost apply <file>`: make the host match the file, undone again on failure.
 * @module
 */
import type { HostCommand } from '../command.js';
import { runChange } from './change.js';

/** `vmhost apply`. */
export const applyCommand: HostCommand = {
  name: 'apply',
  usage: 'apply [options] <file>',
  summary: 'Make the host match the file (undone again on failure)',
  options: {},
  args: ['file'],
  hostOptions: true,
  file: 'arg',
  help: `Carries out the plan step by step, with progress on stderr ("[3/12] create bridge br0 ... done (12 ms)").
Each step is written to the state file before it touches the system and confirmed after, so a
crash or kill leaves an accurate record; the next apply or down finishes or removes what such a
step left. When a step fails, the steps already done are undone in reverse order; the command
prints the failing step, the error and what was undone, and exits 1. If undoing fails too, the
host may be half-applied: exit 4. On Ctrl-C (SIGINT) or SIGTERM the step under way is finished,
the steps done are undone, and the command exits 130.

Examples:
  sudo vmhost apply host.yaml
  sudo vmhost apply host.yaml --json > report.json
  sudo vmhost --netns lab --state-dir /run/vmhost-lab apply host.yaml`,
  run: (ctx, host, file) => runChange(ctx, host, file, 'apply'),
};
