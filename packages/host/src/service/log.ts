/**
 * The events of `vmhost run` as lines: one per action, text for people (`2026-01-05T10:00:00.123Z
 * repair: link br0 deleted: create link:br0, ... (41 ms)`) or, with `--json`, one JSON object per
 * line (ready for journald and log shippers: every field of {@link ServiceEvent}).
 * @module
 */
import type { Step } from '../types.js';
import type { ServiceEvent, ServiceEventType } from './types.js';

/** The event as one line of text. */
export function eventText(e: ServiceEvent): string {
  return `${e.time} ${e.type}: ${e.message}`;
}

/** The event as one line of JSON. */
export function eventJson(e: ServiceEvent): string {
  return JSON.stringify(e);
}

/** Builds an event stamped now. */
export function event(type: ServiceEventType, message: string, fields: Omit<ServiceEvent, 'time' | 'type' | 'message'> = {}): ServiceEvent {
  return { time: new Date().toISOString(), type, message, ...fields };
}

/** `create link:br0, update link:vmt-web` (at most `max`, then a count). */
export function stepsText(steps: readonly Step[], max = 8): string {
  const shown = steps.slice(0, max).map((s) => `${s.action} ${s.id}`);
  if (steps.length > max) shown.push(`${steps.length - max} more`);
  return shown.join(', ');
}

/** The message of an error, on one line, with its code. */
export function errorFields(err: unknown): { code?: string; message: string } {
  const message = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' | ');
  const code = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
  return code !== undefined ? { code, message } : { message };
}
