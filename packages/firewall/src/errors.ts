/**
 * Errors of @vmhost/firewall. Input errors are @vmhost/net's {@link ValidationError}; what goes
 * wrong while reading or applying rules is a {@link FirewallError}.
 * @module
 */
import { VmhostError } from '@vmhost/net';
import type { Family } from './model.js';

/** The step that failed. */
export type FirewallStage = 'save' | 'test' | 'commit' | 'drop' | 'rollback';

/**
 * iptables-save or iptables-restore failed. Codes: `EFW_SAVE` (reading the state), `EFW_RESTORE` (a
 * batch was refused; nothing of this call stays applied), `EFW_ROLLBACK` (a batch failed and putting
 * the previous state back failed too: the state is unknown, see `cause` and `rollbackError`).
 */
export class FirewallError extends VmhostError {
  /** 4 or 6. */
  readonly family: Family;
  /** Which step failed. */
  readonly stage: FirewallStage;
  /** The program's exit status. */
  readonly exitCode: number | null;
  /** The program's standard error. */
  readonly stderr: string;
  /** The batch line iptables-restore complained about (from `line N:` in its message), if any. */
  readonly batchLine?: string;
  /** For `EFW_ROLLBACK`: why the rollback failed. */
  readonly rollbackError?: unknown;
  constructor(
    code: 'EFW_SAVE' | 'EFW_RESTORE' | 'EFW_ROLLBACK',
    info: { family: Family; stage: FirewallStage; exitCode: number | null; stderr: string; batch?: string; rollbackError?: unknown },
    options?: { cause?: unknown },
  ) {
    const m = /line (\d+):/.exec(info.stderr);
    const batchLine = m && info.batch ? info.batch.split('\n')[Number(m[1]) - 1] : undefined;
    const prog = info.stage === 'save' ? `ip${info.family === 6 ? '6' : ''}tables-save` : `ip${info.family === 6 ? '6' : ''}tables-restore`;
    let msg = `${prog} (${info.stage}) failed with status ${String(info.exitCode)}: ${info.stderr.trim()}`;
    if (batchLine !== undefined) msg += ` [batch line: ${batchLine}]`;
    if (code === 'EFW_ROLLBACK') msg += `; rolling back failed too: ${String((info.rollbackError as Error)?.message ?? info.rollbackError)}`;
    super(code, msg, options);
    this.family = info.family;
    this.stage = info.stage;
    this.exitCode = info.exitCode;
    this.stderr = info.stderr;
    if (batchLine !== undefined) this.batchLine = batchLine;
    if (info.rollbackError !== undefined) this.rollbackError = info.rollbackError;
  }
}
