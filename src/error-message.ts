/** An error's message for people, whatever was thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The stack trace (with its causes) for the debug log; the step's error line stays one line. */
export function errorStack(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause === undefined ? "" : `\ncaused by: ${errorStack(error.cause)}`;
  return `${error.stack ?? error.message}${cause}`;
}
