/**
 * `tail -f` for the console log of a VM (`vmhost vm console --follow`).
 * @module
 */
import { open, stat } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * Prints a file line by line, then keeps printing what is appended until `signal` aborts (like
 * `tail -f`, from the start of the file). Waits for a file that does not exist yet, starts over
 * when it is truncated or replaced, and prints a last partial line when stopped.
 */
export async function followFile(
  path: string,
  onLine: (line: string) => void,
  signal: AbortSignal,
  opts: { intervalMs?: number; onWaiting?: () => void } = {},
): Promise<void> {
  const interval = opts.intervalMs ?? 200;
  let pos = 0;
  let ino: number | undefined;
  let partial = '';
  let decoder = new StringDecoder('utf8');
  let saidWaiting = false;
  const emit = (text: string): void => {
    const parts = (partial + text).split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) onLine(p.replace(/\r$/, ''));
  };
  while (!signal.aborted) {
    let st;
    try {
      st = await stat(path);
    } catch (e) {
      if (!(e instanceof Error && 'code' in e && e.code === 'ENOENT')) throw e;
      if (!saidWaiting) opts.onWaiting?.();
      saidWaiting = true;
      st = undefined;
    }
    if (st) {
      if ((ino !== undefined && st.ino !== ino) || st.size < pos) {
        // Replaced or truncated (the VM was started again): start over.
        if (partial) onLine(partial.replace(/\r$/, ''));
        partial = '';
        decoder = new StringDecoder('utf8');
        pos = 0;
      }
      ino = st.ino;
      if (st.size > pos) {
        const fh = await open(path, 'r');
        try {
          const buf = Buffer.alloc(64 * 1024);
          for (;;) {
            const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
            if (bytesRead === 0) break;
            pos += bytesRead;
            emit(decoder.write(buf.subarray(0, bytesRead)));
          }
        } finally {
          await fh.close();
        }
      }
    }
    try {
      await delay(interval, undefined, { signal });
    } catch {
      break;
    }
  }
  const rest = partial + decoder.end();
  if (rest) onLine(rest.replace(/\r$/, ''));
}
