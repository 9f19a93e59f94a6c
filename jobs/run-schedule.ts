import type { JobProcessor } from './catalog.js';

// Placeholder while schedules are built (issue 5): refuses, so nothing is dropped silently.
export function createRunScheduleProcessor(): JobProcessor<'run-schedule'> {
  return async () => {
    throw new Error('schedules are not built yet');
  };
}
