import type { TrustOptions } from '../../importers/types.ts';
import { UsageError } from '../errors.ts';

/** The trust and selection flags shared by inspect, extract, convert, fleet and wizard. */
export const trustFlagOptions = {
  key: { type: 'string' },
  keyring: { type: 'string' },
  'decrypt-key': { type: 'string' },
  'check-purpose': { type: 'string' },
  castr: { type: 'string' },
  'max-signature-size': { type: 'string' },
  ca: { type: 'string' },
  pubkey: { type: 'string' },
  'cert-purpose': { type: 'string' },
  'aes-key': { type: 'string' },
  select: { type: 'string' },
  board: { type: 'string' },
  'no-verify': { type: 'boolean' },
  strict: { type: 'boolean' },
} as const;

export const trustFlagsUsage =
  '[--key pem] [--keyring pem] [--decrypt-key pem] [--check-purpose smimesign|codesign|any] [--castr DIR] [--max-signature-size BYTES] ' +
  '[--ca pem | --pubkey pem] [--cert-purpose emailProtection|codeSigning] [--aes-key FILE] [--select SET,MODE] ' +
  '[--board NAME] [--no-verify] [--strict]';

type Values = { [K in keyof typeof trustFlagOptions]?: (typeof trustFlagOptions)[K]['type'] extends 'boolean' ? boolean : string };

export function trustOptionsFrom(values: Values): TrustOptions {
  let maxSignatureSize: number | undefined;
  if (values['max-signature-size'] !== undefined) {
    maxSignatureSize = Number(values['max-signature-size']);
    if (!Number.isSafeInteger(maxSignatureSize) || maxSignatureSize <= 0) {
      throw new UsageError(`--max-signature-size must be a positive number of bytes, not '${values['max-signature-size']}'`);
    }
  }
  return {
    noVerify: values['no-verify'],
    key: values.key,
    keyring: values.keyring,
    decryptKey: values['decrypt-key'],
    checkPurpose: values['check-purpose'],
    castr: values.castr,
    maxSignatureSize,
    ca: values.ca,
    pubkey: values.pubkey,
    certPurpose: values['cert-purpose'],
    aesKey: values['aes-key'],
    select: values.select,
    board: values.board,
    strict: values.strict,
  };
}
