import { apiKeyDigest, newApiKey } from '../config/api-key-digest.js';

/**
 * `rendermill keys new <tenant>`: makes an API key for a tenant. The key is printed once, for
 * the tenant; the configuration gets only its SHA-256 (`tenant=sha256:…`), so neither the
 * environment nor a config map or secret at rest holds a usable key.
 */
export function newKeyCommand(tenant: string): void {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(tenant)) {
    throw new Error(`tenant "${tenant}": use 1–64 letters, digits, _ . or -`);
  }
  const key = newApiKey();
  process.stdout.write(
    [
      `key for tenant "${tenant}" (give it to the tenant; it is not stored anywhere):`,
      `  ${key}`,
      'add this entry to RENDERMILL_API_KEYS (comma-separated with the others):',
      `  ${tenant}=sha256:${apiKeyDigest(key)}`,
      '',
    ].join('\n'),
  );
}
