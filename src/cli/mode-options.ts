import { Option, type Command } from 'commander';
import { BATCH_MODES, ON_EXPIRY } from '../contracts/batch-request.js';

/** What the mode flags read, as `render`, `submit` and `estimate` share them. */
export interface ModeFlags {
  mode?: (typeof BATCH_MODES)[number];
  completeBy?: string;
  onExpiry?: (typeof ON_EXPIRY)[number];
}

/** The flags choosing how a batch is rendered: realtime, the provider's Batch API, or auto. */
export function addModeOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        '--mode <mode>',
        'realtime (default), provider_batch (the provider’s Batch API: half price, within 24 h) or auto (with --complete-by)',
      ).choices(BATCH_MODES),
    )
    .option(
      '--complete-by <date-time>',
      'with --mode auto: when the batch must be complete, e.g. 2027-03-31T18:00:00Z; a provider batch is used only if its 24 h window fits',
    )
    .addOption(
      new Option(
        '--on-expiry <what>',
        'items an expired provider batch never reached: fail (default) or render them realtime',
      ).choices(ON_EXPIRY),
    );
}

/** The flags as the batch request's fields. */
export const modeFields = (flags: ModeFlags) => ({
  mode: flags.mode,
  complete_by: flags.completeBy,
  on_expiry: flags.onExpiry,
});
