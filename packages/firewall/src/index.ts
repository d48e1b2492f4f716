/**
 * @vmhost/firewall: NAT, port forwards and forwarding rules of a VM host, and anti-spoofing on its
 * VMs' bridge ports, as atomic iptables-restore / ebtables-restore batches (IPv4, IPv6, bridge) in
 * private chains per owner.
 *
 * Layers: `model` + `validate` (typed input), `render/` (pure: rule set, restore text, save parser,
 * planner), `exec/` (running the save/restore programs, optionally in a network namespace, and
 * holding their commits) and `apply` (the public operations, with rollback).
 * @module
 */
export type { Action, CtState, Family, FirewallModel, Lan, LinkLocalPolicy, Masquerade, Port, PortForward, PortSpec, Rule, TableFamily } from './model.js';
export { validateModel, validateOwner, validateGroup, CHAIN_NAME_MAX, CHAIN_PREFIX, OWNER_MAX } from './validate.js';
export type { NormalizedModel, NormalizedRule, NormalizedForward, NormalizedMasquerade, NormalizedLan, NormalizedPort } from './validate.js';
export { render } from './render/index.js';
export type { RenderedBatches } from './render/index.js';
export { buildRuleset, restoreText, ownerChain, groupChain, ownerComment, GROUP_KINDS } from './render/ruleset.js';
export { eui64LinkLocal, portBridgeRules, portNdRules } from './render/bridge.js';
export { DIALECTS } from './render/dialect.js';
export type { Dialect } from './render/dialect.js';
export type { ChainSpec, FamilySpec, JumpSpec, OwnedRuleset, TableName, TableSpec } from './render/ruleset.js';
export { parseSave, ownedFamily, ownersIn } from './render/save.js';
export type { SavedChain, SavedState, SavedTable } from './render/save.js';
export { planFamily, dropText, isEmptyPlan, TABLE_MARKER } from './render/plan.js';
export type { FamilyPlan } from './render/plan.js';
export { plan, planAgainst, isNoop, apply, remove, removeGroup, save, tableSections } from './apply.js';
export type { ApplyOptions, ApplyResult, CheckMode, Plan, SavedText } from './apply.js';
export { defaultRunner, defaultStarter, starterFromRunner, programs, parkedState, canObservePrograms } from './exec/runner.js';
export type { ExecOptions, RunOutput, Runner, StartedProgram, Starter } from './exec/runner.js';
export { iptablesBackend } from './exec/backend.js';
export type { IptablesBackend } from './exec/backend.js';
export { FirewallError } from './errors.js';
export type { FirewallStage } from './errors.js';
export { requiredSysctls, applySysctls } from './sysctl.js';
export type { Sysctl, SysctlOptions } from './sysctl.js';
