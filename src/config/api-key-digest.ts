import { createHash, randomBytes } from 'node:crypto';

/** A tenant's API key as rendermill keeps it: only its SHA-256, never the key itself. */
export interface ApiKeyDigest {
  tenant: string;
  sha256: string;
}

export const apiKeyDigest = (key: string) => createHash('sha256').update(key).digest('hex');

/** A new random API key (`rm_` + 32 bytes, base64url): long enough that a hash lookup is safe. */
export const newApiKey = () => `rm_${randomBytes(32).toString('base64url')}`;
