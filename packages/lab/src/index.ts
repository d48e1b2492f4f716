/**
 * @vmhost/lab: a lab kit for namespace-based tests (see README.md). Built on @vmhost/net only.
 * @module
 */
export { Lab, LabSetupError, LabCloseError, DEFAULT_LAB_PREFIX, LAB_OWNER_DIR, LAB_NAME_MAX } from './lab.js';
export type { LabOptions, LabNamespaceSpec, LabBridgeSpec, LabLinkSpec, LabLinkEnd, LabAddressOptions } from './lab.js';
