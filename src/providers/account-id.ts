import { createHash } from 'node:crypto';

/**
 * The account a route's calls count against: its base URL and a fingerprint of its key, never
 * the key itself. Two adapters on the same URL and key (the Images and the Responses API of
 * one OpenAI account) share it, and with it their rate windows and pause.
 */
export function accountIdFor(baseURL: string, apiKey: string): string {
  const fingerprint = createHash('sha256').update(apiKey).digest('hex').slice(0, 12);
  return `${baseURL.replace(/\/+$/, '')}#${fingerprint}`;
}
