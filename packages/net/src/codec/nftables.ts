/**
 * nf_tables generation messages (NFNL_SUBSYS_NFTABLES: NFT_MSG_NEWGEN, NFT_MSG_GETGEN):
 * `struct nfgenmsg` followed by NFTA_GEN_* attributes. Every committed ruleset transaction (an
 * iptables-nft or nft change) ends with a NEWGEN notification on NFNLGRP_NFTABLES naming the new
 * generation and the process that made it. Pure.
 * @module
 */
import { decodeAttrs, encodeAttrs, schema, string, Writer, type Schema, type WithOther } from './attrs.js';
import * as N from './nf-constants.js';
import { be32, readNfGenMsg, writeNfGenMsg, type NfGenMsg } from './nfnetlink.js';

/** NFTA_GEN_* attributes. */
export interface NftGenAttrs extends WithOther {
  /** NFTA_GEN_ID: the ruleset generation. */
  id?: number;
  /** NFTA_GEN_PROC_PID: the process that committed the change (only in notifications). */
  procPid?: number;
  /** NFTA_GEN_PROC_NAME: its name (comm, at most 15 bytes). */
  procName?: string;
}

/** A generation message: header and attributes. */
export interface NftGenMessage {
  header: NfGenMsg;
  attrs: NftGenAttrs;
}

export const nftGenSchema: Schema = schema('nft_gen_attributes', [
  [N.NFTA_GEN_ID, 'id', be32],
  [N.NFTA_GEN_PROC_PID, 'procPid', be32],
  [N.NFTA_GEN_PROC_NAME, 'procName', string],
]);

/** Encodes a generation message body (nfgenmsg + NFTA_GEN_*); a GETGEN request has no attributes. */
export function encodeNftGenMessage(m: { header: Partial<NfGenMsg>; attrs: NftGenAttrs }): Buffer {
  const w = new Writer(32);
  writeNfGenMsg(w, m.header);
  encodeAttrs(w, nftGenSchema, m.attrs);
  return w.finish();
}

/** Decodes a generation message body. Throws {@link CodecError} on structural damage. */
export function decodeNftGenMessage(payload: Buffer): NftGenMessage {
  return { header: readNfGenMsg(payload), attrs: decodeAttrs<NftGenAttrs>(nftGenSchema, payload, N.NFGENMSG_LEN) };
}
