/**
 * Polls `check` until it holds, for a state change whose cause the test has already set off (a
 * reply received, a process killed): bounded by `timeoutMs`, then it throws naming `what`. Never
 * a proof of absence: that is what waiting for a reply is for.
 */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
