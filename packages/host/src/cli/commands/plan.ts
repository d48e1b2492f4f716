/**
 * `vmhost plan <file>`: the steps apply would carry out.
 * @module
 */
import { resolve } from 'node:path';
import { fileSha256, netnsText, savePlan } from '../../engine/saved-plan.js';
import type { StepAction } from '../../types.js';
import type { HostCommand } from '../command.js';
import { EXIT } from '../deps.js';
import { actionColour, actionSymbol, conflictLine, plural } from '../format.js';

/** `vmhost plan`. */
export const planCommand: HostCommand = {
  name: 'plan',
  usage: 'plan [options] <file>',
  summary: 'Show the steps apply would carry out',
  options: { 'detailed-exitcode': { type: 'boolean' }, out: { type: 'string' } },
  args: ['file'],
  hostOptions: true,
  file: 'arg',
  // iptables-save and the others run while the host file is read
  before: (ctx) => ctx.deps.prefetchFirewall?.(ctx.options),
  help: `Compares the host with the host file and prints the steps apply would carry out:
  + create   ~ update/set/release   - delete   > start   < stop   * restart   = adopt
Prints "No changes." when the host already matches. Changes nothing.
Prints a "!" line for each conflict (what the host file wants that belongs to another host, or
exists without being vmhost's and is not adopted), naming its owner; apply would refuse, and plan
then exits 1.

With --json each step carries its "before" (what the host has now: the live object, or what the
state file records of the last apply; null when missing) and "after" (what the step makes it).

Options:
  --detailed-exitcode   Exit 0 when there are no changes, 2 when changes are pending, 1 on any
                        error (a usage error or an invalid host file too)
  --out FILE            Also save the plan to FILE (JSON, mode 0600): 'vmhost apply FILE' later
                        carries out exactly these steps, or refuses (exit 1, nothing changed) when
                        the host or the host file has changed since. Not saved when apply would
                        refuse anyway (conflicts).

Examples:
  vmhost plan host.yaml
  vmhost plan host.yaml --detailed-exitcode || echo "host differs from host.yaml"
  vmhost --netns lab plan host.yaml --json
  vmhost plan host.yaml --out host.plan && vmhost apply host.plan`,
  async run(ctx, host, file, { values }) {
    const p = await ctx.deps.plan(host, { ...ctx.options });
    const pending = p.steps.length > 0;
    const conflicts = p.conflicts ?? [];
    if (ctx.json) ctx.io.out(JSON.stringify(p, null, 2));
    else if (conflicts.length > 0) {
      for (const s of p.steps) ctx.io.out(`${ctx.paint(actionSymbol(s.action), actionColour(s.action))} ${s.description}`);
      for (const c of conflicts) ctx.io.out(ctx.paint(conflictLine(c), 'red'));
      ctx.io.out('');
      ctx.io.err(`vmhost: plan: apply would refuse: ${plural(conflicts.length, 'conflict')} (${[...new Set(conflicts.map((c) => (c.owner === null ? 'not created by vmhost' : `host ${c.owner}`)))].join(', ')})`);
    } else if (!pending) ctx.io.out(`No changes. Host "${host.name}" matches ${file}.`);
    else {
      for (const s of p.steps) ctx.io.out(`${ctx.paint(actionSymbol(s.action), actionColour(s.action))} ${s.description}`);
      const counts = new Map<StepAction, number>();
      for (const s of p.steps) counts.set(s.action, (counts.get(s.action) ?? 0) + 1);
      const parts = [...counts].map(([a, n]) => `${n} ${a}`);
      ctx.io.out('');
      ctx.io.out(`Plan: ${plural(p.steps.length, 'step')} (${parts.join(', ')}). Run 'vmhost apply ${file}' to carry them out.`);
    }
    if (conflicts.length > 0) return EXIT.error;
    const out = values.out;
    if (typeof out === 'string') {
      const netns = netnsText(ctx.options.netns);
      const path = resolve(file);
      savePlan(resolve(out), { created: new Date().toISOString(), host: host.name, hostFile: { path, sha256: fileSha256(path) }, netns, stateDir: ctx.options.stateDir ?? null }, p);
      if (!ctx.json) ctx.io.err(`vmhost: plan saved to ${out}; 'vmhost apply ${out}' carries it out if nothing has changed by then.`);
    }
    return values['detailed-exitcode'] === true && pending ? EXIT.changes : EXIT.ok;
  },
};
