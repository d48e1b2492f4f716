/**
 * Checks shared by the link kinds and the Links operations. Internal.
 * @module
 */
import { ValidationError } from '../errors.js';
import { validateInt } from '../validate.js';

/** true, false or absent. */
export function checkBool(v: unknown, field: string): void {
  if (v !== undefined && typeof v !== 'boolean') throw new ValidationError(field, v, 'expected true or false');
}

/** An MTU 68-65535, or absent. */
export function validateMtu(v: unknown, field: string): void {
  if (v !== undefined) validateInt(v, field, 68, 65535);
}

/** Seconds from 0 to `max` in steps of 0.01 (the kernel keeps centiseconds), or absent. */
export function validateSeconds(v: unknown, field: string, max: number): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max || Math.abs(v * 100 - Math.round(v * 100)) > 1e-6) {
    throw new ValidationError(field, v, `expected seconds from 0 to ${max} in steps of 0.01`);
  }
}
