// Polls a condition for end-to-end tests, which watch real processes and
// sockets: no event to await, so look every 50 ms until a deadline.

/** Resolves once `cond()` holds; past `timeoutMs` fails naming `what`, with `detail()` (e.g. a process's output) appended. */
export async function until(cond: () => boolean, timeoutMs: number, what: string, detail?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${detail ? `\n--- output ---\n${detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
