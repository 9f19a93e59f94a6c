import { createHash } from 'node:crypto';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * Maps bearer keys to tenants. Only SHA-256 digests of the keys are kept in memory, and a
 * presented key is looked up by its digest, so no comparison leaks a key's prefix by timing.
 */
export class ApiKeys {
  private readonly tenantByDigest: Map<string, string>;

  constructor(keys: readonly { tenant: string; key: string }[]) {
    this.tenantByDigest = new Map(keys.map(({ tenant, key }) => [sha256(key), tenant]));
  }

  get size(): number {
    return this.tenantByDigest.size;
  }

  /** The tenant of an `Authorization: Bearer <key>` header, or undefined. */
  tenantFor(authorization: string | undefined): string | undefined {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    return match ? this.tenantByDigest.get(sha256(match[1]!)) : undefined;
  }
}
