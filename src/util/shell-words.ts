/**
 * Split a command line into words as a POSIX shell would, without expansion: whitespace separates, quotes
 * group, a backslash escapes the next character (inside double quotes only `"`, `\`, `$` and backquote).
 * Init scripts, unit ExecStart lines and lxc.init.cmd all follow these rules.
 */
export function splitShellWords(line: string): { words: string[]; unterminated: '"' | "'" | null } {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === quote) quote = null;
      else if (ch === '\\' && quote === '"' && i + 1 < line.length && '"\\$`'.includes(line[i + 1]!)) cur += line[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return { words, unterminated: quote };
}
