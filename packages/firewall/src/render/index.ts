/**
 * The pure layer: model → rule set → iptables-restore text, and the planner.
 * @module
 */
import type { FirewallModel } from '../model.js';
import { validateModel, type NormalizedModel } from '../validate.js';
import { buildRuleset, restoreText } from './ruleset.js';

/** The restore batches of a model, one per family. */
export interface RenderedBatches {
  /** For `iptables-restore --noflush`; empty when the model has no IPv4 rules. */
  ipv4: string;
  /** For `ip6tables-restore --noflush`; empty when the model has no IPv6 rules. */
  ipv6: string;
  /** For `ebtables-restore --noflush` (the VM ports); empty when no port has isolation on. */
  bridge: string;
}

/**
 * Renders `model` as iptables-restore (and ebtables-restore) text, as it would be applied to tables where the owner has
 * nothing yet: private chains declared and filled, one commented jump inserted into each built-in
 * chain used. Pure and deterministic: the same model gives byte-identical text.
 * @throws {ValidationError} for a bad model.
 */
export function render(model: FirewallModel | NormalizedModel): RenderedBatches {
  const rs = buildRuleset(validateModel(model));
  return { ipv4: restoreText(rs.ipv4), ipv6: restoreText(rs.ipv6), bridge: restoreText(rs.bridge) };
}
