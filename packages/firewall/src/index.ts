/**
 * @vmhost/firewall: NAT, port forwards and forwarding rules of a VM host as atomic
 * iptables-restore batches, IPv4 and IPv6, in private chains per owner.
 *
 * Layers: `model` + `validate` (typed input), `render/` (pure: rule set, restore text, save parser,
 * planner), `exec/` (running iptables-save/-restore, optionally in a network namespace) and
 * `apply` (the public operations, with rollback).
 * @module
 */
export type { Action, CtState, Family, FirewallModel, Lan, Masquerade, PortForward, PortSpec, Rule } from './model.js';
export { validateModel, validateOwner, validateGroup, CHAIN_NAME_MAX, CHAIN_PREFIX, OWNER_MAX } from './validate.js';
export type { NormalizedModel, NormalizedRule, NormalizedForward, NormalizedMasquerade, NormalizedLan } from './validate.js';
export { render } from './render/index.js';
export type { RenderedBatches } from './render/index.js';
export { buildRuleset, restoreText, ownerChain, groupChain, ownerComment } from './render/ruleset.js';
export type { ChainSpec, FamilySpec, JumpSpec, OwnedRuleset, TableName, TableSpec } from './render/ruleset.js';
export { parseSave, ownedFamily, ownersIn } from './render/save.js';
export type { SavedState, SavedTable } from './render/save.js';
export { planFamily, dropText, isEmptyPlan, TABLE_MARKER } from './render/plan.js';
export type { FamilyPlan } from './render/plan.js';
export { plan, apply, remove, removeGroup, save, tableSections } from './apply.js';
export type { ApplyOptions, ApplyResult, Plan } from './apply.js';
export { defaultRunner, defaultStarter, starterFromRunner, programs } from './exec/runner.js';
export type { ExecOptions, RunOutput, Runner, StartedProgram, Starter } from './exec/runner.js';
export { FirewallError } from './errors.js';
export type { FirewallStage } from './errors.js';
export { requiredSysctls, applySysctls } from './sysctl.js';
export type { Sysctl, SysctlOptions } from './sysctl.js';
