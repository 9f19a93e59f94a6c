import { ENV_DEFAULTS } from '../../config/env-schema.js';
import { ClientUsageError } from './client-errors.js';

/** Where the API listens when RENDERMILL_URL is unset: this machine, on the API's default `PORT`. */
export const DEFAULT_API_URL = `http://127.0.0.1:${ENV_DEFAULTS.PORT}`;

export interface ClientConfig {
  /** RENDERMILL_URL without a trailing slash. Default {@link DEFAULT_API_URL}. */
  baseUrl: string;
  /** RENDERMILL_API_KEY: one of the keys in the API's RENDERMILL_API_KEYS. Required. */
  apiKey: string;
}

/** Reads RENDERMILL_URL and RENDERMILL_API_KEY, refusing in one line what cannot work. */
export function clientConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ClientConfig {
  const raw = env.RENDERMILL_URL?.trim() || DEFAULT_API_URL;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ClientUsageError(
      `RENDERMILL_URL "${raw}" is not a URL: expected e.g. ${DEFAULT_API_URL}`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ClientUsageError(`RENDERMILL_URL "${raw}" must be an http:// or https:// URL`);
  }
  const apiKey = env.RENDERMILL_API_KEY?.trim();
  if (!apiKey) {
    throw new ClientUsageError(
      'RENDERMILL_API_KEY is not set: set it to one of the keys the API was started with (its RENDERMILL_API_KEYS)',
    );
  }
  return { baseUrl: url.href.replace(/\/+$/, ''), apiKey };
}
