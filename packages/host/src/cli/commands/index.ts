/**
 * Every command of `vmhost`, by name, in the order of the help.
 * @module
 */
import type { Command } from '../command.js';
import { applyCommand } from './apply.js';
import { demoCommand } from './demo.js';
import { downCommand } from './down.js';
import { guestBuildCommand } from './guest-build.js';
import { planCommand } from './plan.js';
import { recoverCommand } from './recover.js';
import { runCommand } from './run.js';
import { statusCommand } from './status.js';
import { systemdUnitCommand } from './systemd-unit.js';
import { vmConsoleCommand } from './vm-console.js';
import { vmCommitCommand, vmRollbackCommand, vmSnapshotDeleteCommand, vmSnapshotsCommand } from './vm-disks.js';
import { vmSnapshotCommand } from './vm-snapshot.js';
import { vmStartCommand } from './vm-start.js';
import { vmStopCommand } from './vm-stop.js';

/** The commands by name (`plan`, `vm stop`, ...). */
export const COMMANDS: Readonly<Record<string, Command>> = Object.fromEntries(
  [planCommand, applyCommand, downCommand, statusCommand, runCommand, systemdUnitCommand, recoverCommand, vmStartCommand, vmStopCommand, vmConsoleCommand, vmSnapshotCommand, vmSnapshotsCommand, vmRollbackCommand, vmCommitCommand, vmSnapshotDeleteCommand, guestBuildCommand, demoCommand].map((c) => [c.name, c]),
);

/** The words after `vmhost vm`. */
export const VM_SUBCOMMANDS = ['start', 'stop', 'console', 'snapshot', 'snapshots', 'rollback', 'commit', 'snapshot-delete'];

/** The words after `vmhost guest`. */
export const GUEST_SUBCOMMANDS = ['build'];
