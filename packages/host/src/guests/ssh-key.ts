/**
 * Parsing an OpenSSH public key line (`authorized_keys` format without options): the key type,
 * the base64 blob, and whether the blob is what the type says. Pure.
 * @module
 */
import { ValidationError } from '@vmhost/net';

/** The key types accepted (OpenSSH 9's defaults; `ssh-dss` is refused, OpenSSH disables it). */
export const SSH_KEY_TYPES = [
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
] as const;

/** One of {@link SSH_KEY_TYPES}. */
export type SshKeyType = (typeof SSH_KEY_TYPES)[number];

/** A parsed public key. */
export interface SshPublicKey {
  type: SshKeyType;
  /** The blob, base64 as given (canonical). */
  base64: string;
  /** The comment, if any (one line). */
  comment?: string;
  /** `type base64[ comment]`, normalised spacing: what goes into `ssh_authorized_keys`. */
  line: string;
}

/** Reads SSH wire strings (uint32 length + bytes) from a blob. */
class Reader {
  #off = 0;
  constructor(private readonly buf: Buffer) {}
  string(): Buffer | undefined {
    if (this.#off + 4 > this.buf.length) return undefined;
    const n = this.buf.readUInt32BE(this.#off);
    if (n > this.buf.length - this.#off - 4) return undefined;
    const s = this.buf.subarray(this.#off + 4, this.#off + 4 + n);
    this.#off += 4 + n;
    return s;
  }
  get done(): boolean {
    return this.#off === this.buf.length;
  }
}

/** The fields after the type string, per type: how many strings, and fixed lengths where known. */
function checkBody(type: SshKeyType, r: Reader): string | undefined {
  const need = (n: number): Buffer[] | undefined => {
    const out: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const s = r.string();
      if (!s) return undefined;
      out.push(s);
    }
    return out;
  };
  switch (type) {
    case 'ssh-ed25519': {
      const f = need(1);
      if (!f) return 'truncated key blob';
      if (f[0]!.length !== 32) return `an ed25519 key is 32 bytes, this blob holds ${f[0]!.length}`;
      break;
    }
    case 'sk-ssh-ed25519@openssh.com': {
      const f = need(2);
      if (!f) return 'truncated key blob';
      if (f[0]!.length !== 32) return `an ed25519 key is 32 bytes, this blob holds ${f[0]!.length}`;
      break;
    }
    case 'ssh-rsa': {
      const f = need(2);
      if (!f) return 'truncated key blob';
      const bits = (f[1]!.length - (f[1]![0] === 0 ? 1 : 0)) * 8;
      if (bits < 1024) return `an RSA modulus of ${bits} bits is too small`;
      break;
    }
    default: {
      // ecdsa-sha2-nistpNNN and sk-ecdsa: curve name, point (uncompressed, 0x04 ...), [application]
      const f = need(type.startsWith('sk-') ? 3 : 2);
      if (!f) return 'truncated key blob';
      const curve = type.startsWith('sk-') ? 'nistp256' : type.slice('ecdsa-sha2-'.length);
      if (f[0]!.toString('latin1') !== curve) return `the blob names curve '${f[0]!.toString('latin1')}', the type says ${curve}`;
      const size = { nistp256: 65, nistp384: 97, nistp521: 133 }[curve];
      if (f[1]!.length !== size || f[1]![0] !== 4) return `not an uncompressed ${curve} point`;
    }
  }
  if (!r.done) return 'trailing bytes after the key';
  return undefined;
}

/**
 * Parses one public key line `TYPE BASE64 [COMMENT]`: the type must be one of
 * {@link SSH_KEY_TYPES}, the base64 must be canonical, and the blob must start with the same type
 * string and hold that type's fields (sizes checked).
 * @param field names the field in errors, e.g. `cloudInit.sshAuthorizedKeys[0]`.
 * @throws {ValidationError} naming `field` and what is wrong.
 */
export function parseSshPublicKey(line: unknown, field = 'key'): SshPublicKey {
  if (typeof line !== 'string') throw new ValidationError(field, line, 'expected an OpenSSH public key line such as "ssh-ed25519 AAAA... user@host"');
  const trimmed = line.trim();
  if (/[\r\n\0]/.test(trimmed)) throw new ValidationError(field, line, 'a public key is one line');
  const parts = trimmed.split(/[ \t]+/);
  if (parts.length < 2) throw new ValidationError(field, line, 'expected "TYPE BASE64 [COMMENT]"');
  const [type, b64] = parts as [string, string];
  if (!(SSH_KEY_TYPES as readonly string[]).includes(type)) {
    throw new ValidationError(field, line, `unknown or refused key type '${type}' (expected one of ${SSH_KEY_TYPES.join(', ')}; options before the type are not accepted)`);
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new ValidationError(field, line, 'the key is not valid base64');
  const blob = Buffer.from(b64, 'base64');
  if (blob.toString('base64') !== b64) throw new ValidationError(field, line, 'the key is not canonical base64');
  const r = new Reader(blob);
  const inner = r.string();
  if (!inner) throw new ValidationError(field, line, 'the key blob is truncated');
  if (inner.toString('latin1') !== type) {
    throw new ValidationError(field, line, `the key blob says '${inner.toString('latin1').slice(0, 40)}', the line says '${type}'`);
  }
  const bad = checkBody(type as SshKeyType, r);
  if (bad) throw new ValidationError(field, line, bad);
  const comment = parts.slice(2).join(' ');
  const key: SshPublicKey = { type: type as SshKeyType, base64: b64, line: comment ? `${type} ${b64} ${comment}` : `${type} ${b64}` };
  if (comment) key.comment = comment;
  return key;
}
