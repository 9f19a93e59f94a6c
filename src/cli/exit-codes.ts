/** Exit codes of `rendermill render`, a script can rely on (README). */
export const EXIT = { ok: 0, failure: 1, itemsFailed: 2 } as const;
