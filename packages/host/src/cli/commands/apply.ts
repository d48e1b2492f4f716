/**
 * `vmhost apply <file>`: make the host match the file, undone again on failure.
 * @module
 */
import type { HostCommand } from '../command.js';
import { runChange } from './change.js';

/** `vmhost apply`. */
export const applyCommand: HostCommand = {
  name: 'apply',
  usage: 'apply [options] <file | saved plan>',
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

Given a plan saved by 'vmhost plan --out FILE', apply reads the host file the plan names and
carries out exactly the saved steps: it refuses (exit 1, nothing changed) when that file's bytes
changed, when --netns or --state-dir differ from the plan's, or when planning again (under the
state lock) gives other steps than the saved ones (what the host has moved).

Examples:
  sudo vmhost apply host.yaml
  sudo vmhost apply host.yaml --json > report.json
  sudo vmhost --netns lab --state-dir /run/vmhost-lab apply host.yaml
  vmhost plan host.yaml --out host.plan && sudo vmhost apply host.plan`,
  run: (ctx, host, file, inv) => runChange(ctx, host, file, 'apply', inv.saved ? { expectSteps: inv.saved.steps } : {}),
};
