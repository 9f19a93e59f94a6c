import type sharpModule from 'sharp';

export type Sharp = typeof sharpModule;

let loading: Promise<Sharp> | undefined;

/**
 * sharp, loaded on first use. Importing it maps libvips and its codecs (~28 MB of a process's
 * RSS), and most workers never need it: a plain generate is stored as the provider answered
 * it. Only conversions, derived copies and checks of edit inputs call this. A load that fails
 * (no native binary for the platform) fails the call that needed sharp, and the next call
 * tries again.
 */
export function loadSharp(): Promise<Sharp> {
  loading ??= import('sharp').then(
    (module) => module.default,
    (error: unknown) => {
      loading = undefined;
      throw error;
    },
  );
  return loading;
}
