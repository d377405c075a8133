/** stdout carries results (one JSON document with --json); everything else goes to stderr. */
export function printJson(doc: unknown): void {
  process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
}

export function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

export function diagnostic(text: string): void {
  process.stderr.write(text.endsWith('\n') ? text : text + '\n');
}

/** Colour only for a terminal that wants it (NO_COLOR respected). */
export function useColour(stream: NodeJS.WriteStream = process.stderr): boolean {
  return Boolean(stream.isTTY) && !('NO_COLOR' in process.env);
}
