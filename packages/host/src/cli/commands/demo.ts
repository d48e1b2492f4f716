/**
 * `vmhost demo`: the self-contained demo in throwaway namespaces.
 * @module
 */
import type { PlainCommand } from '../command.js';
import { EXIT } from '../deps.js';

/** `vmhost demo`. */
export const demoCommand: PlainCommand = {
  name: 'demo',
  usage: 'demo [--keep] [--json]',
  summary: 'Run the self-contained demo in throwaway namespaces',
  options: { keep: { type: 'boolean' } },
  args: [],
  hostOptions: false,
  file: 'none',
  help: `Builds a whole VM host inside throwaway network namespaces, checks it and tears it down.
Exits 0 when every check passed, 1 otherwise. Needs root.

Options:
  --keep            Leave the namespaces and processes in place for inspection
  --json            Print the results as JSON

Examples:
  sudo vmhost demo
  sudo vmhost demo --keep --json`,
  async run(ctx, { values }) {
    const ok = await ctx.deps.runDemo({ keep: values.keep === true, json: ctx.json, out: (line) => ctx.io.out(line) });
    return ok ? EXIT.ok : EXIT.error;
  },
};
