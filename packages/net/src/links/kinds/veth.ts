/**
 * veth: a pair; the peer (name, mac, mtu, namespace) nests a whole link message in VETH_INFO_PEER.
 * @module
 */
import { CodecError, schema, type ValueCodec, type WithOther } from '../../codec/attrs.js';
import * as C from '../../codec/constants.js';
import type { LinkAttrs, LinkMessage } from '../../codec/link.js';
import { ValidationError } from '../../errors.js';
import { netnsPath } from '../../netns.js';
import type { VethSpec } from '../../types.js';
import { checkKeys, parseMac, validateIfName } from '../../validate.js';
import { validateMtu } from '../common.js';
import type { LinkKind, LinkMessageCodec } from './kind.js';

/** veth: IFLA_INFO_DATA (only in requests: the peer's ifinfomsg and attributes). */
export interface VethData extends WithOther {
  peer?: LinkMessage;
}

function peerCodec(link: LinkMessageCodec): ValueCodec<LinkMessage> {
  return {
    decode: (b, off = 0, len = b.length - off, lean = false) => {
      try {
        return link.read(b, off, len, lean);
      } catch (err) {
        if (err instanceof CodecError) return undefined;
        throw err;
      }
    },
    encode: (w, t, v) => {
      const at = w.beginNested(t, false);
      link.write(w, v);
      w.endNested(at);
    },
  };
}

const PEER_KEYS = ['name', 'mac', 'mtu', 'netns'] as const satisfies ReadonlyArray<keyof VethSpec['peer']>;

export const veth: LinkKind<VethSpec, VethData> = {
  name: 'veth',
  keys: ['peer'],
  infoKinds: ['veth'],
  dataSchema: (link) => schema('veth', [[C.VETH_INFO_PEER, 'peer', peerCodec(link)]]),
  validate(s) {
    if (!s.peer || typeof s.peer !== 'object') throw new ValidationError('peer', s.peer, 'a veth needs { name } of its peer');
    checkKeys(s.peer, PEER_KEYS, 'peer');
    validateIfName(s.peer.name, 'peer.name');
    if (s.peer.mac !== undefined) parseMac(s.peer.mac, 'peer.mac');
    validateMtu(s.peer.mtu, 'peer.mtu');
    if (s.peer.netns !== undefined) netnsPath(s.peer.netns, 'peer.netns');
    else if (s.peer.name === s.name && s.netns === undefined) throw new ValidationError('peer.name', s.peer.name, 'must differ from name');
  },
  encode(s, ctx) {
    const attrs: LinkAttrs = { ifname: s.peer.name };
    if (s.peer.mac !== undefined) attrs.address = parseMac(s.peer.mac, 'peer.mac');
    if (s.peer.mtu !== undefined) attrs.mtu = s.peer.mtu;
    if (s.peer.netns !== undefined) attrs.netNsFd = ctx.netnsFd(s.peer.netns, 'peer.netns');
    const peer: LinkMessage = { header: { family: 0, type: 0, index: 0, flags: 0, change: 0 }, attrs };
    return { linkinfo: { kind: 'veth', data: { peer } } };
  },
  decode: (m) => ({ veth: { peerIndex: m.attrs.link ?? null, peerNetnsId: m.attrs.linkNetnsid ?? null } }),
};
