/**
 * @vmhost/lab: a lab kit for namespace-based tests (see README.md). Built on @vmhost/net only.
 *
 * - {@link Lab}: a set of namespaces declared in one object, with links, bridges, addresses,
 *   sysctls and routes; processes run inside; {@link Lab.close} removes everything.
 * - {@link bareNamespace}: one bare namespace for a test (or a reserved name).
 * - {@link Lab.sweep}: removes what crashed runs left behind, for a name prefix; never the
 *   namespaces of a live process.
 * @module
 */
export { Lab } from './lab.js';
export { bareNamespace, BareNamespace } from './bare.js';
export type { BareNamespaceOptions } from './bare.js';
export { LabSetupError, LabCloseError, LabClosedError, LabCommandError } from './errors.js';
export { LAB_OWNER_DIR } from './ownership.js';
export { DEFAULT_LAB_PREFIX, LAB_NAME_MAX } from './types.js';
export type { LabOptions, LabNamespaceSpec, LabBridgeSpec, LabLinkSpec, LabLinkEnd, LabAddressOptions } from './types.js';
