/**
 * Choosing the accelerator for `accel: 'auto'`. See docs/kvm-accel.md for the rule and why.
 * @module
 */
import { accessSync, constants, existsSync } from 'node:fs';

/** What {@link detectAccel} decided, and why. */
export interface AccelChoice {
  accel: 'kvm' | 'tcg';
  /** One line saying why, e.g. `'/dev/kvm is PVM (kvm_pvm loaded): stock kernels hang under it'`. */
  reason: string;
}

/** Where the rule looks (overridable for tests). */
export interface AccelProbe {
  /** Default '/dev/kvm'. */
  devKvm?: string;
  /** Default '/sys/module'. */
  sysModule?: string;
}

/**
 * The rule: KVM only when `/dev/kvm` exists and opens read-write, and it is a real hardware KVM
 * (`kvm_intel` or `kvm_amd` loaded) and not PVM (`kvm_pvm` loaded): under PVM QEMU reports KVM
 * as enabled but a stock guest kernel hangs silently in its decompressor. Otherwise TCG.
 */
export function detectAccel(probe: AccelProbe = {}): AccelChoice {
  const dev = probe.devKvm ?? '/dev/kvm';
  const mods = probe.sysModule ?? '/sys/module';
  if (!existsSync(dev)) return { accel: 'tcg', reason: `${dev} does not exist` };
  try {
    accessSync(dev, constants.R_OK | constants.W_OK);
  } catch {
    return { accel: 'tcg', reason: `${dev} is not readable and writable` };
  }
  if (existsSync(`${mods}/kvm_pvm`)) {
    return { accel: 'tcg', reason: `${dev} is PVM (kvm_pvm loaded): stock guest kernels hang under it` };
  }
  if (!existsSync(`${mods}/kvm_intel`) && !existsSync(`${mods}/kvm_amd`)) {
    return { accel: 'tcg', reason: 'neither kvm_intel nor kvm_amd is loaded: not a hardware KVM' };
  }
  return { accel: 'kvm', reason: `${dev} usable with ${existsSync(`${mods}/kvm_intel`) ? 'kvm_intel' : 'kvm_amd'}` };
}
