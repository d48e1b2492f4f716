/**
 * What `apply` and `down` share: progress per step on stderr, a summary on stdout (or the report
 * as JSON), and the report of a failure with what was undone.
 * @module
 */
import { HostAbortedError, HostApplyError } from '../../errors.js';
import type { HostOptions, ResolvedHost, Step } from '../../types.js';
import type { CliCtx } from '../command.js';
import { EXIT } from '../deps.js';
import { formatMs, plural } from '../format.js';
import { ProgressPrinter, reportAborted, reportApplyError } from '../report.js';

/** Runs apply or down on `host` with progress; the exit code. */
export async function runChange(ctx: CliCtx, host: ResolvedHost, file: string, which: 'apply' | 'down', extra: { deleteDisks?: boolean; expectSteps?: readonly Step[] } = {}): Promise<number> {
  const progress = new ProgressPrinter(ctx);
  ctx.progress = progress;
  try {
    const options: HostOptions = { ...ctx.options, onProgress: progress.onProgress };
    const report = which === 'apply' ? await ctx.deps.apply(host, extra.expectSteps ? { ...options, expectSteps: extra.expectSteps } : options) : await ctx.deps.down(host, { ...options, ...(extra.deleteDisks !== undefined ? { deleteDisks: extra.deleteDisks } : {}) });
    if (ctx.json) ctx.io.out(JSON.stringify(report, null, 2));
    else if (!report.changed) ctx.io.out(which === 'apply' ? `No changes. Host "${host.name}" matches ${file}.` : `Nothing to tear down for host "${host.name}".`);
    else ctx.io.out(`${which === 'apply' ? 'Apply complete' : 'Down complete'}: ${plural(report.steps.length, 'step')} in ${formatMs(report.ms)}.`);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof HostApplyError) return reportApplyError(ctx, e, file, which);
    if (e instanceof HostAbortedError) return reportAborted(ctx, e, file);
    throw e;
  }
}
