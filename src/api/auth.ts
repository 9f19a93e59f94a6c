import { apiKeyDigest, type ApiKeyDigest } from '../config/api-key-digest.js';

/**
 * Maps bearer keys to tenants. Only SHA-256 digests of the keys are known (configured that way,
 * or hashed as the configuration is read), and a presented key is looked up by its digest, so
 * no comparison leaks a key's prefix by timing.
 */
export class ApiKeys {
  private readonly tenantByDigest: Map<string, string>;

  constructor(keys: readonly ApiKeyDigest[]) {
    this.tenantByDigest = new Map(keys.map(({ tenant, sha256 }) => [sha256, tenant]));
  }

  get size(): number {
    return this.tenantByDigest.size;
  }

  /** The tenant of an `Authorization: Bearer <key>` header, or undefined. */
  tenantFor(authorization: string | undefined): string | undefined {
    const digest = bearerDigest(authorization);
    return digest ? this.tenantByDigest.get(digest) : undefined;
  }

  /** The tenant of a key given by its SHA-256, while that key is configured. */
  tenantOfDigest(sha256: string): string | undefined {
    return this.tenantByDigest.get(sha256);
  }
}

/** The SHA-256 of the key in an `Authorization: Bearer <key>` header. */
export function bearerDigest(authorization: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  return match ? apiKeyDigest(match[1]!) : undefined;
}
