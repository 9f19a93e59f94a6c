import { EXIT } from '../exit-codes.js';

/**
 * Exit codes of the commands that talk to a running API, the same numbers `rendermill render`
 * uses where the meaning is the same, so that one script handles both:
 *
 * | code | meaning |
 * | --- | --- |
 * | 0 | done; for `submit --wait`, every item rendered or came from the cache |
 * | 1 | nothing could be done: the API refused the request (HTTP 4xx/5xx), bad arguments, a file that cannot be read, the API out of reach, RENDERMILL_API_KEY unset |
 * | 2 | `submit --wait`: the batch ended but some items failed or hit the budget |
 * | 3 | `submit --wait`: the batch was cancelled |
 * | 130 | `submit --wait` interrupted (Ctrl-C): the batch carries on in the API |
 *
 * `status`, `list`, `manifest`, `cancel`, `estimate` and `schedules` exit 0 whenever the API
 * answered their request, whatever state the batch is in.
 */
export const CLIENT_EXIT = {
  ...EXIT,
  cancelled: 3,
  interrupted: 130,
} as const;

export type ClientExitCode = (typeof CLIENT_EXIT)[keyof typeof CLIENT_EXIT];
